#!/usr/bin/env python
"""The main job: from nothing to a result on CPU in minutes.

phantoms -> slices -> pretraining (MoCo v2 and the full method) -> collapse
report -> linear probe per checkpoint (+ random init) -> per-organ 3D Dice
table and spectrum PNG, all under one work dir.

Every step calls the same tool a GPU user runs at full scale (``tools/...``),
only with smaller settings::

    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import json
import os
import os.path as osp
import time
from collections import OrderedDict
from typing import Dict, List

from medssl.cli import HelpFormatter
from medssl.utils.process import REPO, run_logged, schedule_options
from medssl.utils.process import tool_command as tool

PRETRAIN = OrderedDict(
    mocov2='configs/selfsup/mocov2/mocov2_r18_1xb4-6it_phantom.py',
    medmoco='configs/selfsup/medmoco/'
    'mocov2-local-decor_r18_1xb4-6it_phantom.py')
PROBE = 'configs/benchmarks/mmsegmentation/btcv/' \
    'linear_r18_1xb2-20it_btcv-phantom.py'
# BTCV phantoms by the shipped split (btcv_13organ.json): 5 training cases,
# 1 validation case (img0003: the probe's end-of-training val) and 2 of the
# held-out test set (img0039, img0040: only tools/test.py sees them)
BTCV_IDS = [1, 2, 3, 4, 5, 6, 39, 40]


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example (about 3 min on 2 cores):\n'
        '  python tools/demo.py --work-dir work_dirs/demo\n'
        '  python tools/demo.py --pretrain-iters 50 --probe-iters 50  # smoke')
    p.add_argument('--work-dir', default='work_dirs/demo',
                   help='everything goes here (data, runs, logs, report)')
    p.add_argument('--pretrain-iters', type=int, default=300,
                   help='pretraining iterations per method')
    p.add_argument('--probe-iters', type=int, default=400,
                   help='linear-probe iterations per checkpoint')
    p.add_argument('--abdomen-cases', type=int, default=6,
                   help='AbdomenCT-1K phantom volumes for pretraining')
    p.add_argument('--shape', type=int, nargs=3, default=(64, 64, 16),
                   metavar=('X', 'Y', 'Z'), help='phantom volume shape')
    p.add_argument('--seed', type=int, default=0,
                   help='phantom and training seed')
    return p.parse_args(argv)


class Steps:
    """Numbered steps with timing; each tool's output goes to a log file."""

    def __init__(self, work_dir: str, total: int) -> None:
        self.work_dir, self.total, self.k = work_dir, total, 0
        self.log_dir = osp.join(work_dir, 'logs')
        os.makedirs(self.log_dir, exist_ok=True)
        self.start = time.time()

    def run(self, title: str, cmds: List[List[str]]) -> None:
        self.k += 1
        t0 = time.time()
        print(f'[{self.k}/{self.total}] {title} ...', flush=True)
        for i, cmd in enumerate(cmds):
            log = osp.join(self.log_dir, f'step{self.k}_{i}.log')
            try:
                run_logged(cmd, log, cwd=REPO)
            except RuntimeError as e:
                raise SystemExit(f'step {self.k} failed: {e}')
        print(f'      done in {time.time() - t0:.0f} s '
              f'(total {time.time() - self.start:.0f} s)', flush=True)


def dice_table(results: Dict[str, dict]) -> str:
    """Markdown table: organs x methods (3D Dice in %)."""
    methods = list(results)
    organs = [k[len('Dice.'):] for k in results[methods[0]]
              if k.startswith('Dice.')]
    lines = ['| organ | ' + ' | '.join(methods) + ' |',
             '|---' * (len(methods) + 1) + '|']
    for organ in organs:
        cells = [results[m].get(f'Dice.{organ}') for m in methods]
        lines.append(f'| {organ} | ' + ' | '.join(
            '—' if c is None or c != c else f'{c:.1f}' for c in cells) + ' |')
    lines.append('| **mDice** | ' + ' | '.join(
        f'**{results[m]["mDice"]:.1f}**' for m in methods) + ' |')
    if all('mHD95' in results[m] for m in methods):
        lines.append('| **mHD95 (mm)** | ' + ' | '.join(
            f'**{results[m]["mHD95"]:.1f}**' for m in methods) + ' |')
    lines.append('| missed / false-positive organ-cases | ' + ' | '.join(
        f'{results[m].get("missed_organs", "?")} / '
        f'{results[m].get("false_positive_organs", "?")}'
        for m in methods) + ' |')
    return '\n'.join(lines)


def main(argv=None) -> None:
    args = parse_args(argv)
    work = osp.abspath(args.work_dir)
    raw, data = osp.join(work, 'raw'), osp.join(work, 'data')
    abd_slices = osp.join(data, 'abdomen1k_slices')
    btcv_slices = osp.join(data, 'btcv_slices')
    shape = [str(s) for s in args.shape]
    steps = Steps(work, total=6)

    steps.run('phantoms: AbdomenCT-1K and BTCV layouts (NIfTI)', [
        tool('misc/make_phantoms.py', osp.join(raw, 'abdomen1k'), '--layout',
             'abdomen1k', '--num-cases', str(args.abdomen_cases), '--seed',
             str(args.seed), '--shape', *shape),
        tool('misc/make_phantoms.py', osp.join(raw, 'btcv'), '--layout',
             'btcv', '--num-cases', str(len(BTCV_IDS)), '--case-ids',
             *map(str, BTCV_IDS), '--seed', str(args.seed + 1), '--shape',
             *shape),
    ])
    steps.run('convert volumes to HU slices', [
        tool('dataset_converters/abdomen1k.py', osp.join(raw, 'abdomen1k'),
             abd_slices),
        tool('dataset_converters/btcv.py', osp.join(raw, 'btcv'),
             btcv_slices),
    ])

    ckpts = OrderedDict()
    cmds = []
    for name, cfg in PRETRAIN.items():
        wd = osp.join(work, 'pretrain', name)
        ckpts[name] = osp.join(wd, f'iter_{args.pretrain_iters}.pth')
        cmds.append(
            tool('train.py', cfg, '--work-dir', wd, '--cfg-options',
                 f'train_dataloader.dataset.data_root={abd_slices}',
                 f'randomness.seed={args.seed}',
                 *schedule_options(args.pretrain_iters)))
    steps.run(f'pretrain MoCo v2 and MoCo v2 + local + decorrelation '
              f'({args.pretrain_iters} iterations each)', cmds)

    collapse_dir = osp.join(work, 'collapse')
    steps.run('collapse report (spectra, effective rank, RankMe)', [
        tool('analysis_tools/collapse.py', PRETRAIN['medmoco'], 'random',
             *ckpts.values(), '--labels', 'random', *ckpts.keys(),
             '--data-root', abd_slices, '--num-samples', '0', '--out-dir',
             collapse_dir)
    ])

    from medssl.analysis.data_efficiency import (Job, test_command,
                                                 train_command)
    probe_cfg = osp.join(REPO, PROBE)
    data_opts = [
        f'{loader}.dataset.data_root={btcv_slices}'
        for loader in ('train_dataloader', 'val_dataloader',
                       'test_dataloader')
    ]
    jobs = [
        Job(name, ckpt, 1.0, args.seed, osp.join(work, 'probe', name),
            data_opts + schedule_options(args.probe_iters) +
            [f'train_cfg.val_interval={args.probe_iters}'])
        for name, ckpt in [('random', None), *ckpts.items()]
    ]
    steps.run(f'linear probe on frozen backbones ({args.probe_iters} '
              'iterations each)', [train_command(probe_cfg, j) for j in jobs])
    steps.run('per-volume 3D Dice and HD95 on the held-out test volumes', [
        test_command(probe_cfg, j,
                     osp.join(j.work_dir, f'iter_{args.probe_iters}.pth'))
        for j in jobs
    ])

    results = OrderedDict()
    for job in jobs:
        # tools/test.py writes the VolumeDiceMetric JSON into its work dir
        with open(osp.join(job.work_dir, 'test', 'volume_dice.json')) as f:
            results[job.method] = json.load(f)['metrics']
    with open(osp.join(collapse_dir, 'collapse.json')) as f:
        collapse = json.load(f)

    table = dice_table(results)
    ranks = '\n'.join(
        f'| {name} | ' + ' | '.join(
            f'{m["effective_rank"]:.1f}' for m in r['embeddings'].values()) +
        ' |' for name, r in collapse.items())
    etypes = list(next(iter(collapse.values()))['embeddings'])
    report = (f'# medssl demo\n\n## Linear probe (affine-free BN + 1x1 '
              f'conv on the frozen backbone), 3D Dice (%) and HD95 on the '
              f'held-out test volumes\n\n{table}\n\n## Effective rank\n\n'
              f'| checkpoint | ' + ' | '.join(etypes) + ' |\n' + '|---' *
              (len(etypes) + 1) + f'|\n{ranks}\n\nSpectra: '
              f'{osp.join(collapse_dir, "collapse.png")}\n')
    with open(osp.join(work, 'demo_results.md'), 'w') as f:
        f.write(report)
    with open(osp.join(work, 'demo_results.json'), 'w') as f:
        json.dump(dict(dice=results, collapse=collapse), f, indent=1)
    print('\n' + report)
    print(f'everything is under {work} '
          f'({time.time() - steps.start:.0f} s in all)')


if __name__ == '__main__':
    main()
