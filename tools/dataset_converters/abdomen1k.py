r"""Convert AbdomenCT-1K (AbdomenCT-1K-ImagePart*/, optional Mask/) to slices.

Example::

    python tools/dataset_converters/abdomen1k.py data/abdomen1k_raw \
        data/abdomen1k --nproc 8
"""
import argparse
import sys

from medssl.cli import HelpFormatter, add_converter_args, converter_kwargs


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example:\n' + __doc__.split('Example::')[1].strip('\n'))
    p.add_argument('root', help='folder holding AbdomenCT-1K-ImagePart*/')
    p.add_argument('out', help='output folder')
    p.add_argument('--glob', dest='img_glob',
                   default='AbdomenCT-1K-ImagePart*/*.nii*',
                   help='image glob relative to root')
    p.add_argument('--mask-glob', default='Mask/*.nii*',
                   help='mask glob relative to root')
    p.add_argument('--no-masks', action='store_true',
                   help='ignore masks (images only)')
    add_converter_args(p, keep_empty=False)
    p.add_argument('--val-every', type=int, default=5,
                   help='segmentation split of the cases with masks (sorted '
                   'ids): every N-th case -> splits/test.txt, every N-th of '
                   'the rest -> splits/val.txt, the others -> '
                   'splits/train.txt (5: 64/16/20 by volume)')
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    from medssl.datasets.converters import convert_abdomen1k
    from medssl.datasets.converters.cli import run_converter
    return run_converter(
        convert_abdomen1k, args.root, args.out, img_glob=args.img_glob,
        mask_glob=args.mask_glob, with_masks=not args.no_masks,
        val_every=args.val_every, **converter_kwargs(args))


if __name__ == '__main__':
    sys.exit(main())
