"""Write CT-like NIfTI phantoms in the BTCV or AbdomenCT-1K raw layout.

Example::

    python tools/misc/make_phantoms.py data/phantom_btcv --layout btcv \
        --num-cases 30 --shape 128 128 24
"""
import argparse

from medssl.datasets.phantoms import BROKEN_KINDS, write_phantom_dataset


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('root')
    p.add_argument('--layout', choices=['btcv', 'abdomen1k'], default='btcv')
    p.add_argument('--num-cases', type=int, default=4)
    p.add_argument('--seed', type=int, default=0)
    p.add_argument('--shape', type=int, nargs=3, default=[64, 64, 12],
                   metavar=('X', 'Y', 'Z'))
    p.add_argument('--case-ids', type=int, nargs='+', default=None)
    p.add_argument('--no-labels', action='store_true')
    p.add_argument('--broken', nargs='*', default=[], choices=BROKEN_KINDS)
    args = p.parse_args(argv)
    paths = write_phantom_dataset(
        args.root, args.layout, num_cases=args.num_cases, seed=args.seed,
        shape=args.shape, broken=args.broken, case_ids=args.case_ids,
        with_labels=not args.no_labels)
    print(f'wrote {len(paths)} files under {args.root}')


if __name__ == '__main__':
    main()
