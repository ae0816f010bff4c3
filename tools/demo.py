#!/usr/bin/env python
"""The main job: from nothing to a result on CPU in minutes.

phantoms -> slices -> pretraining (MoCo v2 and the full method) -> collapse
report -> linear probe per checkpoint (+ random init) -> per-organ 3D Dice
table and spectrum PNG, all under one work dir.

A preset of ``tools/analysis_tools/ablation.py`` (the same code path, small
settings); every step calls the same tool a GPU user runs at full scale
(``tools/...``), in ``--jobs`` parallel single-thread processes::

    python tools/demo.py --work-dir work_dirs/demo
"""
import argparse
import os.path as osp

from medssl.analysis.ablation_run import build_parser, run_ablation
from medssl.analysis.ablation_run.demo import demo_argv, write_demo_report
from medssl.cli import HelpFormatter


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example (about 4 min on 2 cores):\n'
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
    p.add_argument('--seed', type=int, default=0, help='training seed')
    p.add_argument('--jobs', type=int, default=2,
                   help='steps in parallel (each single-threaded)')
    return p.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    ablation = build_parser(__doc__.split('\n')[0], '')
    run = run_ablation(ablation.parse_args(demo_argv(args)))
    print('\n' + write_demo_report(run.work, args.seed))
    print(f'everything is under {osp.abspath(args.work_dir)}')


if __name__ == '__main__':
    main()
