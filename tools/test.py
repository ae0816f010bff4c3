#!/usr/bin/env python
"""Evaluate a segmentation checkpoint with mmengine's Runner (Runner.test).

Examples::

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out DIR]
    bash tools/dist_test.sh CONFIG CHECKPOINT 4

The evaluator (``VolumeDiceMetric`` in the benchmark configs) prints a
per-organ 3D Dice table and writes ``<work_dir>/volume_dice.json`` (or
``--metric-file``). ``--out DIR`` also writes the predicted label slices as
uint8 PNGs named like the input slices (``<case>_<z>.png``); a DIR that
is (or lies inside) a dataset's image or label folder is refused before
anything is written (``OutputPathError``, exit 1): predictions written over
the ground truth would make a rerun score 100.

The checkpoint is read weights-only and loaded strictly
(``medssl.utils.checkpoint.load_model_checkpoint``): a file that is not a
checkpoint of this config's model -- e.g. a pretraining checkpoint given for
a segmentation config -- stops with ``CheckpointError: <path>: ...`` naming
the missing/unexpected key prefixes (exit 1), instead of printing the Dice
of a randomly initialised head. ``--max-key-mismatch N`` tolerates N keys.
"""
import argparse
import os.path as osp
from typing import List, Tuple

from mmengine.config import Config

from medssl.cli import (HelpFormatter, add_config_args, parse_with_local_rank,
                        run_main)

CLEAN_ERRORS = ('ConfigKeyError', 'CheckpointError', 'OutputPathError')


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Test (and evaluate) a medssl segmentation model',
        formatter_class=HelpFormatter,
        epilog='examples:\n' + __doc__.split('Examples::')[1].split('\n\n')[1])
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument(
        '--work-dir',
        help='where to save logs and the metric JSON; None: '
        './work_dirs/<config name>')
    parser.add_argument(
        '--out', help='folder to write the predicted label slices (PNG)')
    parser.add_argument(
        '--metric-file',
        help='JSON file for the per-case/per-organ results; None: '
        '<work_dir>/volume_dice.json')
    parser.add_argument(
        '--max-key-mismatch', type=int, default=0,
        help='missing + unexpected checkpoint keys tolerated')
    add_config_args(parser)
    return parse_with_local_rank(parser, argv)


def _set_evaluator(evaluator, key, value):
    evals = evaluator if isinstance(evaluator, list) else [evaluator]
    for ev in evals:
        if ev.get('type', '').split('.')[-1] == 'VolumeDiceMetric':
            ev[key] = value


#: data_prefix of the CT datasets when a config gives none
_DEFAULT_PREFIX = dict(img_path='img_dir', seg_map_path='ann_dir')


def dataset_folders(cfg: Config) -> List[Tuple[str, str]]:
    """``(description, folder)`` of the image and label folders of every
    dataloader's dataset (wrappers such as ConcatDataset included)."""
    folders = []
    for split in ('train', 'val', 'test'):
        loader = cfg.get(f'{split}_dataloader') or {}
        stack = [loader.get('dataset')]
        while stack:
            ds = stack.pop()
            if not isinstance(ds, dict):
                continue
            stack += list(ds.get('datasets') or []) + [ds.get('dataset')]
            root = ds.get('data_root') or ''
            prefix = ds.get('data_prefix') or _DEFAULT_PREFIX
            for key, what in (('img_path', 'image'),
                              ('seg_map_path', 'label')):
                if prefix.get(key) is not None:
                    folders.append((f'{split} dataset {what} folder',
                                    osp.join(root, prefix[key])))
    return folders


def build_config(args) -> Config:
    from medssl.utils.launcher import load_run_config, setup_cpu_distributed
    cfg = load_run_config(args.config, args.cfg_options, args.launcher,
                          args.work_dir)
    # loaded strictly by main(), not by the Runner's non-strict load_from
    cfg.load_from = None
    cfg.resume = False
    # the checkpoint holds every weight: do not load pretrained backbones
    if 'backbone' in cfg.model and cfg.model.backbone.get('init_cfg'):
        cfg.model.backbone.init_cfg = None
    _set_evaluator(
        cfg.test_evaluator, 'out_file', args.metric_file
        or osp.join(cfg.work_dir, 'volume_dice.json'))
    if args.out is not None:
        from medssl.utils.output_guard import refuse_inside
        refuse_inside(args.out, dataset_folders(cfg))
        _set_evaluator(cfg.test_evaluator, 'pred_dir', args.out)
    # CPU-only machine: gloo, and a process group mmengine can't make itself
    setup_cpu_distributed(cfg)
    return cfg


def main(argv=None):
    args = parse_args(argv)
    from medssl.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    from mmengine.model import is_model_wrapper
    from mmengine.runner import Runner

    from medssl.utils.checkpoint import load_model_checkpoint
    cfg = build_config(args)
    runner = Runner.from_cfg(cfg)
    model = runner.model.module if is_model_wrapper(runner.model) \
        else runner.model
    load_model_checkpoint(model, args.checkpoint, args.max_key_mismatch)
    runner.logger.info(f'Load checkpoint from {args.checkpoint} (strict)')
    metrics = runner.test()
    return metrics


if __name__ == '__main__':
    run_main(main, CLEAN_ERRORS)
