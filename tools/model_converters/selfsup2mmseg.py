r"""Convert a medssl/mmselfsup SSL checkpoint to an mmseg backbone checkpoint.

Examples::

    python tools/model_converters/selfsup2mmseg.py IN.pth OUT.pth \
        [--no-whitening]

Keeps ``backbone.*`` and folds ``decorrelation.running_mean/running_whitening``
into ``backbone.whitening.weight/bias`` (a 1x1 conv for ``WhitenedResNet``).
Load OUT with ``init_cfg=dict(type='VerifiedPretrained', checkpoint=OUT,
prefix='backbone.')`` (see medssl/apis/model_converters.py).
"""
import argparse
import sys

from medssl.cli import HelpFormatter


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.split('\n')[0],
        formatter_class=HelpFormatter,
        epilog='examples:\n' + __doc__.split('Examples::')[1].split('\n\n')[1])
    parser.add_argument('src', help='SSL checkpoint')
    parser.add_argument('dst', help='output mmseg backbone checkpoint')
    parser.add_argument('--no-whitening', action='store_true',
                        help='do not fold the decorrelation into a 1x1 conv')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    """Returns the exit code: 0, or 1 with ``CheckpointError: <src>: ...``
    on stderr (SRC is read weights-only: a file that would run code when
    unpickled is refused, naming the global)."""
    args = parse_args(argv)  # before the heavy imports: --help is instant
    from medssl.utils.output_guard import OutputPathError, refuse_same_file
    try:  # DST == SRC would replace the SSL checkpoint by a backbone file
        refuse_same_file(args.dst, args.src, 'input checkpoint')
    except OutputPathError as e:
        print(f'OutputPathError: {e}', file=sys.stderr)
        return 2
    import medssl  # noqa: F401  (mmcv shim)
    from medssl.apis.model_converters import convert_file
    from medssl.utils.checkpoint import CheckpointError
    try:
        info = convert_file(args.src, args.dst, not args.no_whitening)
    except CheckpointError as e:
        print(f'CheckpointError: {e}', file=sys.stderr)
        return 1
    print(f'wrote {args.dst}: {info["num_tensors"]} tensors, '
          f'whitening={info["whitening"]}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
