"""Convert a medssl/mmselfsup SSL checkpoint to an mmseg backbone checkpoint.

    python tools/model_converters/selfsup2mmseg.py IN.pth OUT.pth \
        [--no-whitening]

Keeps ``backbone.*`` and folds ``decorrelation.running_mean/running_whitening``
into ``backbone.whitening.weight/bias`` (a 1x1 conv for ``WhitenedResNet``).
Load OUT with ``init_cfg=dict(type='VerifiedPretrained', checkpoint=OUT,
prefix='backbone.')`` (see medssl/apis/model_converters.py).
"""
import argparse

import medssl  # noqa: F401  (mmcv shim)
from medssl.apis.model_converters import convert_file


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('src', help='SSL checkpoint')
    parser.add_argument('dst', help='output mmseg backbone checkpoint')
    parser.add_argument('--no-whitening', action='store_true',
                        help='do not fold the decorrelation into a 1x1 conv')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    info = convert_file(args.src, args.dst, not args.no_whitening)
    print(f'wrote {args.dst}: {info["num_tensors"]} tensors, '
          f'whitening={info["whitening"]}')


if __name__ == '__main__':
    main()
