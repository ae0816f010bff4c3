"""Segmentation inference speed: FCN and DeepLabV3+ ResNet-50-D8 at 512x512.

Models are built from the benchmark configs (random weights: speed does not
depend on them), in eval mode, and run through ``model.test_step`` -- the
same path as ``tools/test.py`` and ``tools/infer_volume.py`` (data
preprocessor, whole-image inference, resize to the original size, argmax).
Reported per model and batch size: slices/s (median over timed iterations
after warm-up) and peak memory (CUDA: ``torch.cuda.max_memory_allocated``;
CPU: peak RSS above the RSS before that model's first call, sampled every
2 ms).

Usage::

    python benchmarks/seg_inference.py                       # CPU, quick
    python benchmarks/seg_inference.py --device cuda --batch-sizes 1 8 16 \
        --iters 20 --warmup 5
    [--out benchmarks/results/seg_inference_<device>.json]
"""
import argparse
import json
import os
import os.path as osp
import platform
import sys

import numpy as np
import torch
from mmengine.config import Config

from medssl.utils.benchmark import PeakRSS, time_calls

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
CFG = osp.join(ROOT, 'configs/benchmarks/mmsegmentation/btcv')
MODELS_TO_RUN = {
    'FCN R50-D8': 'fcn_r50-d8_4xb4-40k_btcv-512x512.py',
    'DeepLabV3+ R50-D8': 'deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512.py',
}


def make_batch(batch_size, size, device):
    from mmseg.structures import SegDataSample
    inputs, samples = [], []
    for _ in range(batch_size):
        # windowed CT in [0, 1] (what HUWindow + PackSegInputs give)
        inputs.append(torch.rand(1, size, size))
        s = SegDataSample()
        s.set_metainfo(dict(img_shape=(size, size), ori_shape=(size, size),
                            img_path='bench_0000.png'))
        samples.append(s)
    return dict(inputs=inputs, data_samples=samples)


def bench_model(name, cfg_file, batch_sizes, size, device, warmup, iters):
    from medssl.apis.inference import init_segmentor
    cfg = Config.fromfile(osp.join(CFG, cfg_file))
    model = init_segmentor(cfg, None, device=device)
    rows = []
    for bs in batch_sizes:
        batch = make_batch(bs, size, device)
        if device.startswith('cuda'):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
            base = torch.cuda.memory_allocated()
        preds = []
        with torch.no_grad(), PeakRSS() as mem:
            times = time_calls(lambda: preds.append(model.test_step(batch)),
                               iters, warmup=warmup, device=device)
        assert preds[-1][0].pred_sem_seg.data.shape[-2:] == (size, size)
        if device.startswith('cuda'):
            peak = torch.cuda.max_memory_allocated() - base
        else:
            peak = mem.peak - mem.start
        med = float(np.median(times))
        rows.append(dict(model=name, config=cfg_file, batch_size=bs,
                         size=size, device=device, iters=iters,
                         sec_per_batch=med, slices_per_s=bs / med,
                         peak_mem_mib=peak / 2**20))
        print(f'  {name} bs={bs}: {bs / med:.2f} slices/s, '
              f'peak {peak / 2**20:.0f} MiB', flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--device', default='cpu')
    parser.add_argument('--batch-sizes', type=int, nargs='+', default=[1])
    parser.add_argument('--size', type=int, default=512)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--iters', type=int, default=2)
    parser.add_argument('--models', nargs='+', default=list(MODELS_TO_RUN),
                        choices=list(MODELS_TO_RUN))
    parser.add_argument('--threads', type=int, default=None,
                        help='torch CPU threads (default: torch default)')
    parser.add_argument('--out', default=None)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    from medssl.utils import register_all_modules
    register_all_modules()

    rows = []
    for name in args.models:
        rows += bench_model(name, MODELS_TO_RUN[name], args.batch_sizes,
                            args.size, args.device, args.warmup, args.iters)

    # Machines are noisy: compare throughput with the first model measured
    # at the same batch size in this run.
    base = {}
    for r in rows:
        base.setdefault(r['batch_size'], r['slices_per_s'])
        r['ratio_vs_first'] = r['slices_per_s'] / base[r['batch_size']]
    header = (f'| model | batch | input | device | slices/s | ratio vs '
              f'{rows[0]["model"]} | s/batch | peak mem (MiB) |\n'
              '|---|---|---|---|---|---|---|---|')
    lines = [header] + [
        f'| {r["model"]} | {r["batch_size"]} | {r["size"]}x{r["size"]} | '
        f'{r["device"]} | {r["slices_per_s"]:.2f} | '
        f'{r["ratio_vs_first"]:.2f} | {r["sec_per_batch"]:.3f}'
        f' | {r["peak_mem_mib"]:.0f} |' for r in rows
    ]
    table = '\n'.join(lines)
    print(table)
    env = dict(python=sys.version.split()[0], torch=torch.__version__,
               cpu_threads=torch.get_num_threads(),
               machine=platform.machine(), processor=platform.processor(),
               cuda=(torch.cuda.get_device_name(0)
                     if args.device.startswith('cuda') else None),
               warmup=args.warmup, iters=args.iters)
    out = args.out or osp.join(ROOT, 'benchmarks', 'results',
                               f'seg_inference_{args.device.split(":")[0]}'
                               '.json')
    os.makedirs(osp.dirname(out), exist_ok=True)
    with open(out, 'w') as f:
        json.dump(dict(env=env, results=rows, table=table), f, indent=2)
    print(f'wrote {out}')


if __name__ == '__main__':
    main()
