#!/usr/bin/env python
"""Segment CT volumes (NIfTI) with a trained 2D slice segmentor.

    python tools/infer_volume.py CONFIG CHECKPOINT INPUT OUTPUT \
        [--batch-size 8] [--device cpu|cuda:0] [--window LOW HIGH ...]

INPUT is a .nii/.nii.gz file (OUTPUT: a file, or a folder to write it into)
or a folder of them (OUTPUT: a folder, same file names). The output is a
uint8 label volume with the input's affine, header and array orientation.
Slicing, windowing and the way back to 3D follow medssl.apis.inference.
"""
import argparse

import medssl  # noqa: F401  (mmcv shim before mmseg)
from mmengine.config import Config, DictAction


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Segment NIfTI CT volumes')
    parser.add_argument('config')
    parser.add_argument('checkpoint')
    parser.add_argument('input', help='NIfTI file or folder of NIfTI files')
    parser.add_argument('output', help='output NIfTI file or folder')
    parser.add_argument('--batch-size', type=int, default=8)
    parser.add_argument('--device', default='cpu')
    parser.add_argument(
        '--window',
        nargs=2,
        type=float,
        action='append',
        metavar=('LOW', 'HIGH'),
        help='override the HU window(s) of the test pipeline (repeat for '
        'several channels); must match what the model was trained with')
    parser.add_argument('--no-progress', action='store_true')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override settings in the config, key=value')
    return parser.parse_args(argv)


def override_windows(cfg: Config, windows) -> None:
    pipelines = []
    if 'test_pipeline' in cfg:
        pipelines.append(cfg.test_pipeline)
    pipelines.append(cfg.test_dataloader.dataset.pipeline)
    for pipeline in pipelines:
        for t in pipeline:
            if str(t['type']).split('.')[-1] == 'HUWindow':
                t['windows'] = [tuple(w) for w in windows]


def main(argv=None):
    args = parse_args(argv)
    from medssl.apis.inference import (build_slice_pipeline, init_segmentor,
                                       segment_path)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if args.window:
        override_windows(cfg, args.window)
    model = init_segmentor(cfg, args.checkpoint, device=args.device)
    pipeline = build_slice_pipeline(cfg)
    written = segment_path(model, args.input, args.output, pipeline,
                           args.batch_size, not args.no_progress)
    for path in written:
        print(f'wrote {path}')


if __name__ == '__main__':
    main()
