"""Convert BTCV (RawData/Training/{img,label}) to 2D slices.

Example::

    python tools/dataset_converters/btcv.py data/btcv_raw data/btcv --nproc 4
"""
import argparse
import json
import sys

from medssl.datasets.converters import ConversionError, convert_btcv


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root', help='folder holding RawData/Training/...')
    p.add_argument('out', help='output folder (img_dir, ann_dir, meta, '
                   'splits, summary.json)')
    p.add_argument('--split-file', default=None,
                   help='JSON {split: [case, ...]} (default: the shipped '
                   'medssl/datasets/splits/btcv_13organ.json)')
    p.add_argument('--glob', dest='img_glob',
                   default='RawData/Training/img/img*.nii*',
                   help='image glob relative to root')
    p.add_argument('--label-glob',
                   default='RawData/Training/label/label*.nii*',
                   help='label glob relative to root')
    p.add_argument('--nproc', type=int, default=1,
                   help='processes (one case each)')
    p.add_argument('--threads', type=int, default=None,
                   help='slice-writing threads per process (default 1; '
                   'output is identical for any value)')
    p.add_argument('--img-format', choices=['npy', 'png'], default='npy',
                   help='image slice format: uint16 .npy (default; ~2x '
                   'faster to read, far faster to write) or 16-bit PNG '
                   '(~2.4x smaller). Labels are uint8 PNG either way')
    p.add_argument('--on-error', choices=['fail', 'skip'], default='fail')
    p.add_argument('--drop-empty', action='store_true',
                   help='drop slices without body (default: keep every '
                   'slice so volumes can be rebuilt for 3D Dice)')
    p.add_argument('--min-body-fraction', type=float, default=0.0,
                   help='with --drop-empty: drop slices whose body fraction '
                   '(HU > -500) is <= this')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    try:
        summary = convert_btcv(
            args.root, args.out, split_file=args.split_file,
            img_glob=args.img_glob, label_glob=args.label_glob,
            nproc=args.nproc, threads=args.threads,
            img_format=args.img_format,
            on_error=args.on_error,
            keep_empty=not args.drop_empty,
            min_body_fraction=args.min_body_fraction)
    except ConversionError as e:
        print(f'ConversionError: {e}', file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in summary.items() if k != 'cases'},
                     indent=2, sort_keys=True))
    return 0


if __name__ == '__main__':
    sys.exit(main())
