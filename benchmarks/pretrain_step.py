"""Pretraining step cost of the variants vs MoCo v2, and decorrelation cost.

Part 1: one optimisation step (forward + backward + SGD step, both encoders,
queue update) of every pretraining variant of
:data:`medssl.analysis.variants.SWITCHES` (``mocov2`` = mmselfsup ``MoCo``;
the others ``MedMoCo`` with the variant's switches, same
backbone/neck/head/queue), as ratios to MoCo v2 measured in the same run
(warm-up, then median of timed iterations, variants interleaved round-robin
so that load changes on a shared machine hit all alike); peak memory of
one extra step per variant (CUDA: ``max_memory_allocated`` above the
allocated memory before the step; CPU: peak RSS above the RSS before the step
after ``malloc_trim``, sampled every 2 ms, i.e. the transient
activation/gradient memory).

Part 2: ``EigenDecorrelationNeck``-style whitening forward + backward at
C=2048 over M positions, for naive full eigh (one group, float64), grouped
eigh and the shipped shuffled groups; time ratio vs naive and whitening error
``max |cov(Y) - I|`` (within groups and over the full C x C).

Usage::

    python benchmarks/pretrain_step.py --device cpu
    python benchmarks/pretrain_step.py --device cuda --batch 32 --size 224

Prints a table and writes JSON (``--out``).
"""
import argparse
import ctypes
import gc
import json
import os
import platform
import statistics
import time
from typing import Dict, List

import torch

from medssl.analysis.variants import NUM_GROUPS, SWITCHES, model_config
from medssl.models.utils.whitening import (apply_grouped_whitening,
                                           eigh_inv_sqrt, grouped_moments,
                                           moments_to_mean_cov)
from medssl.utils.benchmark import PeakRSS, sync, time_calls


def _malloc_trim() -> None:
    try:
        ctypes.CDLL('libc.so.6').malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def bench_steps(args) -> List[Dict]:
    from mmengine.optim import OptimWrapper
    from mmengine.registry import DefaultScope
    from mmselfsup.structures import SelfSupDataSample

    from medssl.registry import MODELS
    from medssl.utils import register_all_modules
    register_all_modules(init_default_scope=False)

    n, s = args.batch, args.size
    g = torch.Generator().manual_seed(0)
    inputs = [torch.rand(n, 1, s, s, generator=g) for _ in range(2)]
    samples = []
    for i in range(n):
        ds = SelfSupDataSample()
        ds.set_metainfo(
            dict(view_params=[
                dict(crop_bbox=(0.0, 0.0, 0.8 * s, 0.8 * s), flip=False,
                     img_shape=(s, s)),
                dict(crop_bbox=(0.2 * s, 0.1 * s, s, 0.9 * s),
                     flip=bool(i % 2), img_shape=(s, s)),
            ]))
        samples.append(ds)
    data = dict(inputs=inputs, data_samples=samples)
    variants = tuple(SWITCHES)
    models, wrappers = {}, {}
    for variant in variants:
        torch.manual_seed(0)
        with DefaultScope.overwrite_default_scope('medssl'):
            model = MODELS.build(
                model_config(variant, args.depth, queue_len=args.queue_len,
                             num_groups=args.num_groups, grid_size=args.grid))
        models[variant] = model.to(args.device)
        wrappers[variant] = OptimWrapper(
            torch.optim.SGD(model.parameters(), lr=0.03, momentum=0.9,
                            weight_decay=1e-4))

    def step(variant):
        models[variant].train_step(data, wrappers[variant])

    # Interleaved (round-robin) timing: a load change on a shared machine
    # hits every variant alike, so the ratios stay meaningful.
    times = {v: [] for v in variants}
    for it in range(args.warmup + args.iters):
        for v in variants:
            sync(args.device)
            t0 = time.perf_counter()
            step(v)
            sync(args.device)
            if it >= args.warmup:
                times[v].append(time.perf_counter() - t0)
    rows = []
    for v in variants:
        # Peak memory of one more step, variant by variant.
        if args.device == 'cuda':
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
            step(v)
            sync(args.device)
            mem = torch.cuda.max_memory_allocated() - base
        else:
            # Return freed heap pages to the OS first, so the step's
            # allocations show up as RSS growth again.
            gc.collect()
            _malloc_trim()
            with PeakRSS() as rss:
                step(v)
            mem = rss.delta
        rows.append(dict(variant=v, median_s=statistics.median(times[v]),
                         times_s=times[v], peak_mem_mib=mem / 2**20))
    ref, ref_min = rows[0]['median_s'], min(rows[0]['times_s'])
    for r in rows:
        r['ratio_vs_mocov2'] = r['median_s'] / ref
        # The fastest step is the least disturbed by other processes.
        r['min_s'] = min(r['times_s'])
        r['min_ratio_vs_mocov2'] = r['min_s'] / ref_min
    return rows


def _whitening_errors(y: torch.Tensor, groups: int) -> Dict[str, float]:
    yd = y.double()
    yc = yd - yd.mean(0)
    cov = yc.t() @ yc / yd.shape[0]
    eye = torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    err_full = (cov - eye).abs().max().item()
    c = cov.shape[0] // groups
    blocks = torch.stack(
        [cov[i * c:(i + 1) * c, i * c:(i + 1) * c] for i in range(groups)])
    err_group = (blocks - eye[:c, :c]).abs().max().item()
    return dict(err_within_groups=err_group, err_full=err_full)


def bench_decorrelation(args) -> List[Dict]:
    c, m = args.decor_channels, args.decor_positions
    g = torch.Generator().manual_seed(0)
    # Correlated, non-centred features: mixing matrix = I + low-rank + noise.
    mix = (torch.eye(c) + torch.randn(c, 16, generator=g) @ torch.randn(
        16, c, generator=g) / 16 + 0.1 * torch.randn(c, c, generator=g) /
           c**0.5)
    x0 = (torch.randn(m, c, generator=g) @ mix + 1.0).to(args.device)
    setups = [
        ('naive eigh (1 group, fp64)', 1, False),
        ('grouped eigh (32 x 64)', 32, False),
        ('grouped eigh (64 x 32)', 64, False),
        ('shuffled eigh (32 x 64) + running CxC cov', 32, True),
    ]
    rows = []
    for name, groups, shuffled in setups:
        if shuffled:
            from medssl.models.necks import EigenDecorrelationNeck
            neck = EigenDecorrelationNeck(c, groups, shuffle_groups=True,
                                          sync_stats=False).to(args.device)

        used = {}

        def run():
            x = x0.clone().requires_grad_(True)
            if shuffled:  # the neck's own forward (M, C) maps
                used['perm'] = neck.permutation(x.device)
                y = neck((x.t()[None, :, :, None], ),
                         perm=used['perm'])[0][0, :, :, 0].t()
            else:
                sx, sxx, cnt = grouped_moments(x, groups)
                mean, cov = moments_to_mean_cov(sx, sxx, cnt, 1e-5)
                w = eigh_inv_sqrt(cov)
                y = apply_grouped_whitening(x, mean, w)
            y.square().mean().backward()
            return y.detach()

        # The first (warm-up) run also gives the whitening error (for the
        # shuffled neck: within this step's permuted groups, reported under
        # the contiguous-groups column only when the permutation is known).
        y0 = run()
        if shuffled:
            errs = _whitening_errors(y0[:, used['perm']], groups)
        else:
            errs = _whitening_errors(y0, groups)
        # Naive eigh is slow and steady: one timed run is enough.
        times = time_calls(run, 1 if groups == 1 else args.decor_iters,
                           device=args.device)
        rows.append(dict(name=name, groups=groups, shuffled=shuffled,
                         median_s=statistics.median(times),
                         times_s=times, **errs))
    ref = rows[0]['median_s']
    for r in rows:
        r['speedup_vs_naive'] = ref / r['median_s']
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--device', default='cpu', choices=['cpu', 'cuda'])
    p.add_argument('--depth', type=int, default=50)
    p.add_argument('--batch', type=int, default=None,
                   help='default 4 (cpu) / 32 (cuda)')
    p.add_argument('--size', type=int, default=None,
                   help='default 96 (cpu) / 224 (cuda)')
    p.add_argument('--queue-len', type=int, default=4096)
    p.add_argument('--num-groups', type=int, default=None,
                   help='groups of the grouped variants (default: the '
                   'variant table\'s, the shipped 32)')
    p.add_argument('--grid', type=int, default=4)
    p.add_argument('--warmup', type=int, default=2)
    p.add_argument('--iters', type=int, default=7)
    p.add_argument('--decor-channels', type=int, default=2048)
    p.add_argument('--decor-positions', type=int, default=1568,
                   help='M = N*H*W (32 x 7 x 7 for R50 at 224)')
    p.add_argument('--decor-iters', type=int, default=5)
    p.add_argument('--threads', type=int, default=None,
                   help='torch.set_num_threads (CPU)')
    p.add_argument('--skip-steps', action='store_true')
    p.add_argument('--out', default=None,
                   help='JSON path (default benchmarks/results/'
                   'pretrain_step_<device>.json)')
    args = p.parse_args()
    if args.device == 'cuda' and not torch.cuda.is_available():
        raise SystemExit('CUDA requested but not available')
    args.batch = args.batch or (4 if args.device == 'cpu' else 32)
    args.size = args.size or (96 if args.device == 'cpu' else 224)
    torch.backends.cudnn.benchmark = args.device == 'cuda'
    if args.threads:
        torch.set_num_threads(args.threads)

    steps = [] if args.skip_steps else bench_steps(args)
    decor = bench_decorrelation(args)

    dev = torch.cuda.get_device_name() if args.device == 'cuda' else \
        f'{platform.processor() or platform.machine()} ' \
        f'({torch.get_num_threads()} threads)'
    print(f'# pretrain step: ResNet-{args.depth}, batch {args.batch}, '
          f'{args.size}x{args.size}, queue {args.queue_len}, decor '
          f'{args.num_groups or NUM_GROUPS} groups eigh, '
          f'grid {args.grid}, '
          f'{dev}, torch {torch.__version__}')
    if steps:
        mem_kind = 'CUDA max allocated' if args.device == 'cuda' \
            else 'peak RSS delta'
        print(f'| variant | step median (s) | ratio vs MoCo v2 | step min (s) '
              f'| min ratio | {mem_kind} (MiB) |')
        print('|---|---|---|---|---|---|')
        for r in steps:
            print(f"| {r['variant']} | {r['median_s']:.4f} | "
                  f"{r['ratio_vs_mocov2']:.3f} | {r['min_s']:.4f} | "
                  f"{r['min_ratio_vs_mocov2']:.3f} | {r['peak_mem_mib']:.0f} |")
    print(f'\n# decorrelation fwd+bwd: C={args.decor_channels}, '
          f'M={args.decor_positions}')
    print('| method | median (s) | speed-up vs naive | '
          'max|cov-I| within groups | max|cov-I| full CxC |')
    print('|---|---|---|---|---|')
    for r in decor:
        print(f"| {r['name']} | {r['median_s']:.4f} | "
              f"{r['speedup_vs_naive']:.1f}x | {r['err_within_groups']:.2e} | "
              f"{r['err_full']:.2e} |")

    out = args.out or os.path.join(
        os.path.dirname(os.path.abspath(__file__)), 'results',
        f'pretrain_step_{args.device}.json')
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(config=vars(args), device=dev,
                       torch=torch.__version__, steps=steps,
                       decorrelation=decor), f, indent=1)
    print(f'\nwrote {out}')


if __name__ == '__main__':
    main()
