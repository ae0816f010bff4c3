#!/usr/bin/env python
r"""Segment CT volumes (NIfTI) with a trained 2D slice segmentor.

Example::

    python tools/infer_volume.py CONFIG CHECKPOINT ct.nii.gz mask.nii.gz \
        [--batch-size 8] [--device auto|cpu|cuda:0] [--window LOW HIGH ...]

INPUT is a .nii/.nii.gz file (OUTPUT: a file, or a folder to write it into)
or a folder of them (OUTPUT: a folder, same file names). The output is a
uint8 label volume with the input's affine, header and array orientation.
Slicing, windowing and the way back to 3D follow medssl.apis.inference;
reading, writing and the file/folder rules medssl.apis.volume_io and
medssl.apis.segment_files.

Memory: the voxels stay in their on-disk dtype (an uncompressed ``.nii`` is
memory-mapped), ``--batch-size`` slices at a time become float32, and the
labels go straight into one uint8 volume.

Options and paths are checked before the model or any volume is loaded
(exit 2, one line, nothing written): ``--batch-size`` < 1, an empty
``--window``, a missing input, and an OUTPUT that is an input file (same
path, symlink or hard link: ``OutputPathError``). A bad input file or a
failed write (full disk, read-only folder) does not stop a folder: every
good file is written, then a summary names each bad file and why, and the
exit code is 1. A checkpoint that is not this config's model (or would run
code when unpickled) stops with ``CheckpointError: <path>: ...`` (exit 1)
before anything is written.
"""
import argparse
import sys

from mmengine.config import DictAction

import medssl  # noqa: F401  (mmcv shim before mmseg; a light import)
from medssl.cli import HelpFormatter, add_device_arg, resolve_device


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description='Segment NIfTI CT volumes', formatter_class=HelpFormatter,
        epilog='example:\n' + __doc__.split('Example::')[1].split(
            '\n\n')[1])
    parser.add_argument('config', help='the segmentor config')
    parser.add_argument('checkpoint', help='its trained checkpoint')
    parser.add_argument('input', help='NIfTI file or folder of NIfTI files')
    parser.add_argument('output', help='output NIfTI file or folder')
    parser.add_argument('--batch-size', type=int, default=8,
                        help='slices per forward pass')
    add_device_arg(parser)
    parser.add_argument(
        '--window',
        nargs=2,
        type=float,
        action='append',
        metavar=('LOW', 'HIGH'),
        help='override the HU window(s) of the test pipeline (repeat for '
        'several channels); must match what the model was trained with')
    parser.add_argument('--no-progress', action='store_true',
                        help='no progress bar')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def override_windows(cfg, windows) -> None:
    """Set every HUWindow of the test pipeline(s) of ``cfg`` (an mmengine
    Config) to ``windows``."""
    pipelines = []
    if 'test_pipeline' in cfg:
        pipelines.append(cfg.test_pipeline)
    pipelines.append(cfg.test_dataloader.dataset.pipeline)
    for pipeline in pipelines:
        for t in pipeline:
            if str(t['type']).split('.')[-1] == 'HUWindow':
                t['windows'] = [tuple(w) for w in windows]


def check_options(args) -> None:
    """``ValueError`` naming the option, before anything is loaded."""
    if args.batch_size < 1:
        raise ValueError(f'--batch-size must be >= 1, got {args.batch_size}')
    for low, high in args.window or ():
        if not low < high:
            raise ValueError(f'--window LOW HIGH needs LOW < HIGH, got '
                             f'{low:g} {high:g}')


def main(argv=None) -> int:
    """Returns the exit code (0: every file written; 1: see stderr; 2: bad
    options or paths, nothing read or written)."""
    args = parse_args(argv)
    from medssl.apis.inference import build_slice_pipeline, init_segmentor
    from medssl.apis.segment_files import plan_outputs, segment_path
    from medssl.utils.output_guard import OutputPathError
    try:
        check_options(args)
        plan_outputs(args.input, args.output)
    except OutputPathError as e:
        print(f'OutputPathError: {e}', file=sys.stderr)
        return 2
    except (ValueError, FileNotFoundError) as e:
        print(f'error: {e}', file=sys.stderr)
        return 2
    from mmengine.config import Config

    from medssl.utils.checkpoint import CheckpointError
    from medssl.utils.config import ConfigKeyError, check_config_keys
    cfg = Config.fromfile(args.config)
    try:
        check_config_keys(cfg.keys(), args.cfg_options, args.config)
    except ConfigKeyError as e:
        print(f'ConfigKeyError: {e}', file=sys.stderr)
        return 1
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.window:
        override_windows(cfg, args.window)
    try:
        model = init_segmentor(cfg, args.checkpoint,
                               device=resolve_device(args.device))
    except CheckpointError as e:
        print(f'CheckpointError: {e}', file=sys.stderr)
        return 1
    pipeline = build_slice_pipeline(cfg)
    failed = []
    try:
        written = segment_path(model, args.input, args.output, pipeline,
                               args.batch_size, not args.no_progress, failed)
    except (ValueError, OSError) as e:  # a single bad input or output
        written, failed = [], [(args.input, str(e))]
    for path in written:
        print(f'wrote {path}')
    if failed:
        print(f'{len(failed)} file(s) failed, {len(written)} written:',
              file=sys.stderr)
        for _, msg in failed:
            print(f'  VolumeError: {msg}', file=sys.stderr)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())
