"""Convert BTCV (RawData/Training/{img,label}) to 2D slices.

Example::

    python tools/dataset_converters/btcv.py data/btcv_raw data/btcv --nproc 4
"""
import argparse
import sys

from medssl.cli import HelpFormatter, add_converter_args, converter_kwargs


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example:\n' + __doc__.split('Example::')[1].strip('\n'))
    p.add_argument('root', help='folder holding RawData/Training/...')
    p.add_argument('out', help='output folder (img_dir, ann_dir, meta, '
                   'splits, summary.json)')
    p.add_argument('--split-file', default=None,
                   help='JSON {split: [case, ...]} (None: the shipped '
                   'medssl/datasets/splits/btcv_13organ.json)')
    p.add_argument('--glob', dest='img_glob',
                   default='RawData/Training/img/img*.nii*',
                   help='image glob relative to root')
    p.add_argument('--label-glob',
                   default='RawData/Training/label/label*.nii*',
                   help='label glob relative to root')
    # every slice is kept by default, so volumes can be rebuilt for 3D Dice
    add_converter_args(p, keep_empty=True)
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from medssl.datasets.converters import convert_btcv
    from medssl.datasets.converters.cli import run_converter
    return run_converter(
        convert_btcv, args.root, args.out, split_file=args.split_file,
        img_glob=args.img_glob, label_glob=args.label_glob,
        **converter_kwargs(args))


if __name__ == '__main__':
    sys.exit(main())
