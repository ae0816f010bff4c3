#!/usr/bin/env python
"""Evaluate a segmentation checkpoint with mmengine's Runner (Runner.test).

Examples::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
    bash tools/dist_test.sh CONFIG CHECKPOINT 4

The evaluator (``VolumeDiceMetric`` in the benchmark configs) prints a
per-organ 3D Dice table and writes ``<work_dir>/volume_dice.json`` (or
``--metric-file``). ``--out DIR`` also writes the predicted label slices as
uint8 PNGs named like the input slices (``<case>_<z>.png``).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from medssl.utils.launcher import setup_cpu_distributed


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a medssl segmentation model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where to save logs and the metric JSON; default '
        './work_dirs/<config name>')
    parser.add_argument(
        '--out', help='folder to write the predicted label slices (PNG)')
    parser.add_argument(
        '--metric-file',
        help='JSON file for the per-case/per-organ results; default '
        '<work_dir>/volume_dice.json')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override settings in the config, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def _set_evaluator(evaluator, key, value):
    evals = evaluator if isinstance(evaluator, list) else [evaluator]
    for ev in evals:
        if ev.get('type', '').split('.')[-1] == 'VolumeDiceMetric':
            ev[key] = value


def build_config(args) -> Config:
    cfg = Config.fromfile(args.config)
    cfg.launcher = args.launcher
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    cfg.load_from = args.checkpoint
    cfg.resume = False
    # the checkpoint holds every weight: do not load pretrained backbones
    if 'backbone' in cfg.model and cfg.model.backbone.get('init_cfg'):
        cfg.model.backbone.init_cfg = None
    _set_evaluator(
        cfg.test_evaluator, 'out_file', args.metric_file
        or osp.join(cfg.work_dir, 'volume_dice.json'))
    if args.out is not None:
        _set_evaluator(cfg.test_evaluator, 'pred_dir', args.out)
    # CPU-only machine: gloo, and a process group mmengine can't make itself
    setup_cpu_distributed(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from medssl.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    main()
