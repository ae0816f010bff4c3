#!/usr/bin/env python
"""Train a medssl config (pretraining or mmseg downstream) with mmengine's Runner.

Examples::

    python tools/train.py configs/selfsup/medmoco/mocov2-local-decor_r18_1xb4-6it_phantom.py
    python tools/train.py CONFIG --resume            # continue from work_dir's latest checkpoint
    python tools/train.py CONFIG --resume PATH.pth   # continue from a given checkpoint
    bash tools/dist_train.sh CONFIG 8                # DDP on 8 GPUs (gloo on CPU)
"""
import argparse
import os

from mmengine.config import Config

from medssl.cli import (HelpFormatter, add_config_args, parse_with_local_rank,
                        run_main)

#: Errors that end the run with one line ``<Error>: <message>`` and exit 1
#: (config keys, checkpoints, non-finite training), not a traceback.
CLEAN_ERRORS = ('ConfigKeyError', 'CheckpointError', 'NonFiniteLossError',
                'WorkDirLockedError')


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train a medssl model', formatter_class=HelpFormatter,
        epilog='examples:\n' + __doc__.split('Examples::')[1].split('\n\n')[1])
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models '
                        '(None: ./work_dirs/<config name>)')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume training: without a value (or "auto") from the latest '
        'checkpoint in the work dir, otherwise from the given checkpoint')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale lr linearly with the real total batch size')
    parser.add_argument(
        '--dist-backend',
        choices=['nccl', 'gloo', 'mpi'],
        help='torch.distributed backend; None: the config\'s, switched to '
        'gloo when CUDA is unavailable')
    parser.add_argument(
        '--allow-nonfinite',
        action='store_true',
        help='load checkpoints (resume / load_from / pretrained) even if '
        'their weights hold NaN/inf (same as MEDSSL_ALLOW_NONFINITE=1); by '
        'default such a checkpoint is refused')
    parser.add_argument('--seed', type=int, help='random seed')
    add_config_args(parser, 'train_dataloader.dataset.data_root=data/x '
                    'model.local_weight=1.0')
    return parse_with_local_rank(parser, argv)


def build_config(args: argparse.Namespace) -> Config:
    """Config file + command line -> the config the Runner gets.

    Unknown / misspelt top-level keys are a ``ConfigKeyError``
    (medssl.utils.config); ``--resume`` without a path continues from
    medssl.utils.checkpoint.find_resume_checkpoint (a complete iter_N.pth of
    the work dir, never a temporary of an interrupted save); a
    ``NonFiniteLossHook`` is added if the config has none, so no checkpoint
    with NaN/inf tensors is written.
    """
    from medssl.utils.launcher import load_run_config, setup_cpu_distributed
    cfg = load_run_config(args.config, args.cfg_options, args.launcher,
                          args.work_dir)

    if args.amp:
        optim_wrapper = cfg.optim_wrapper.get('type', 'OptimWrapper')
        assert optim_wrapper in ('OptimWrapper', 'AmpOptimWrapper'), \
            '`--amp` is not supported for custom optimizer wrappers: set ' \
            'optim_wrapper.type=AmpOptimWrapper in the config instead.'
        cfg.optim_wrapper.type = 'AmpOptimWrapper'
        cfg.optim_wrapper.setdefault('loss_scale', 'dynamic')

    if args.auto_scale_lr:
        cfg.setdefault('auto_scale_lr', dict(base_batch_size=256))
        cfg.auto_scale_lr.enable = True

    if args.resume == 'auto':
        # only a complete iter_N.pth / epoch_N.pth of the work dir; the
        # runner (medssl.utils.resume.SafeRunner) logs which, or that there
        # is none
        from medssl.utils.checkpoint import find_resume_checkpoint
        cfg.resume = True
        cfg.load_from = find_resume_checkpoint(cfg.work_dir)
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume

    if args.seed is not None:
        cfg.setdefault('randomness', dict())
        cfg.randomness.seed = args.seed

    if args.dist_backend is not None:
        cfg.setdefault('env_cfg', dict())
        cfg.env_cfg.setdefault('dist_cfg', dict())
        cfg.env_cfg.dist_cfg.backend = args.dist_backend
    hooks = cfg.get('custom_hooks') or []
    if not any(str(h.get('type', '')).split('.')[-1] == 'NonFiniteLossHook'
               for h in hooks):
        cfg.custom_hooks = list(hooks) + [
            dict(type='NonFiniteLossHook', on_nonfinite='raise')]
    # CPU-only machine: gloo, and a process group mmengine can't make itself
    setup_cpu_distributed(cfg)
    return cfg


def main(argv=None) -> None:
    args = parse_args(argv)
    # Registers medssl + mmselfsup + mmseg modules; installs the mmcv shim.
    from medssl.utils import register_all_modules
    register_all_modules(init_default_scope=False)
    cfg = build_config(args)
    # strict, content-checking resume; one run per work dir (a lock file)
    from medssl.utils.resume import SafeRunner
    before = os.environ.get('MEDSSL_ALLOW_NONFINITE')
    if args.allow_nonfinite:  # read by medssl.utils.checkpoint
        os.environ['MEDSSL_ALLOW_NONFINITE'] = '1'
    try:
        SafeRunner.from_cfg(cfg).train()
    finally:
        if before is None:
            os.environ.pop('MEDSSL_ALLOW_NONFINITE', None)
        else:
            os.environ['MEDSSL_ALLOW_NONFINITE'] = before


if __name__ == '__main__':
    run_main(main, CLEAN_ERRORS)
