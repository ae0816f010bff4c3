r"""Write CT-like NIfTI phantoms in the BTCV or AbdomenCT-1K raw layout.

Example::

    python tools/misc/make_phantoms.py data/phantom_btcv --layout btcv \
        --num-cases 30 --shape 128 128 24
"""
import argparse

from medssl.cli import HelpFormatter


def main(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], formatter_class=HelpFormatter,
        epilog='example:\n' + __doc__.split('Example::')[1].strip('\n'))
    p.add_argument('root', help='output folder (raw layout)')
    p.add_argument('--layout', choices=['btcv', 'abdomen1k'], default='btcv',
                   help='raw folder layout to imitate')
    p.add_argument('--num-cases', type=int, default=4, help='volumes')
    p.add_argument('--seed', type=int, default=0, help='generator seed')
    p.add_argument('--shape', type=int, nargs=3, default=[64, 64, 12],
                   metavar=('X', 'Y', 'Z'), help='volume shape')
    p.add_argument('--case-ids', type=int, nargs='+', default=None,
                   help='case numbers (None: 1..num-cases)')
    p.add_argument('--no-labels', action='store_true',
                   help='write images only')
    p.add_argument('--broken', nargs='*', default=[], metavar='KIND',
                   help='also write broken cases of these kinds (converter '
                   'error tests; kinds: medssl.datasets.phantom_writer.'
                   'BROKEN_KINDS)')
    args = p.parse_args(argv)
    from medssl.datasets.phantom_writer import (BROKEN_KINDS,
                                                write_phantom_dataset)
    unknown = sorted(set(args.broken) - set(BROKEN_KINDS))
    if unknown:
        p.error(f'--broken: unknown kinds {unknown} (choose from '
                f'{", ".join(BROKEN_KINDS)})')
    paths = write_phantom_dataset(
        args.root, args.layout, num_cases=args.num_cases, seed=args.seed,
        shape=args.shape, broken=args.broken, case_ids=args.case_ids,
        with_labels=not args.no_labels)
    print(f'wrote {len(paths)} files under {args.root}')


if __name__ == '__main__':
    main()
