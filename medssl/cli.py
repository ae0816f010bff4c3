"""Command-line pieces every tool shares, importable in a fraction of a
second (argparse only: no torch / mmengine), so that a tool parses its
arguments -- and answers ``--help`` -- before its heavy imports.

Usage in a tool::

    from medssl.cli import HelpFormatter

    def parse_args(argv=None):
        p = argparse.ArgumentParser(
            description=..., formatter_class=HelpFormatter,
            epilog='example:\\n  python tools/x.py cfg.py')
        ...

    def main(argv=None):
        args = parse_args(argv)
        import torch  # heavy imports after parsing
"""
import argparse

__all__ = ['HelpFormatter', 'add_converter_args', 'converter_kwargs',
           'add_device_arg', 'resolve_device',
           'add_config_args', 'parse_with_local_rank']


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter,
                    argparse.RawDescriptionHelpFormatter):
    """``--help`` shows every option's default; description and epilog
    (the examples) keep their line breaks.

    A help text that already says ``(default ...`` in words keeps only its
    own wording, and a positional argument without a default shows none
    (instead of ``(default: None)``)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ''
        if '(default' in text and '%(default)' not in text:
            return text
        if not action.option_strings and action.default is None:
            return text
        return super()._get_help_string(action)


def add_converter_args(p: argparse.ArgumentParser,
                       keep_empty: bool) -> None:
    """Options every dataset converter takes (tools/dataset_converters/*.py):
    parallelism, format, error policy and which slices to keep; only the
    default of ``--keep-empty`` differs per dataset. ``--drop-empty`` is a
    hidden alias of ``--no-keep-empty`` (the BTCV converter's option name in
    scripts written for it)."""
    p.add_argument('--nproc', type=int, default=1,
                   help='processes (one case each)')
    p.add_argument('--threads', type=int, default=None,
                   help='slice-writing threads per process (None: 1; '
                   'output is identical for any value)')
    p.add_argument('--img-format', choices=['npy', 'png'], default='npy',
                   help='image slice format: uint16 .npy (~2x faster to '
                   'read, far faster to write) or 16-bit PNG (~2.4x '
                   'smaller). Labels are uint8 PNG either way')
    p.add_argument('--on-error', choices=['fail', 'skip'], default='fail',
                   help='a bad case stops the run, or is skipped and '
                   'listed in summary.json')
    p.add_argument('--keep-empty', action=argparse.BooleanOptionalAction,
                   default=keep_empty,
                   help='keep slices without body (all air); '
                   '--no-keep-empty drops them')
    p.add_argument('--drop-empty', dest='keep_empty', action='store_false',
                   help=argparse.SUPPRESS)
    p.add_argument('--min-body-fraction', type=float, default=0.0,
                   help='with --no-keep-empty: drop slices whose body '
                   'fraction (HU > -500) is <= this (0: all-air slices '
                   'only)')


def converter_kwargs(args: argparse.Namespace) -> dict:
    """The converter keyword arguments of :func:`add_converter_args`."""
    return dict(nproc=args.nproc, threads=args.threads,
                img_format=args.img_format, on_error=args.on_error,
                keep_empty=args.keep_empty,
                min_body_fraction=args.min_body_fraction)


def add_device_arg(p: argparse.ArgumentParser) -> None:
    """``--device``, default ``auto`` (see :func:`resolve_device`)."""
    p.add_argument('--device', default='auto',
                   help="'auto' (cuda if available, else cpu), 'cpu', "
                   "'cuda' or 'cuda:N'")


def resolve_device(device: str) -> str:
    """``'auto'`` -> ``'cuda'`` when torch sees a GPU, else ``'cpu'``; any
    other value is returned unchanged (imports torch only for 'auto')."""
    if device != 'auto':
        return device
    import torch
    return 'cuda' if torch.cuda.is_available() else 'cpu'


def add_config_args(p: argparse.ArgumentParser, example: str = '') -> None:
    """``--cfg-options`` and ``--launcher`` / ``--local_rank`` (set by
    torch.distributed launchers), as tools/train.py and tools/test.py take
    them; read the result with :func:`parse_with_local_rank`."""
    from mmengine.config import DictAction
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override settings in the config, key=value' +
                   (f', e.g. {example}' if example else ''))
    p.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'],
                   default='none', help='job launcher')
    p.add_argument('--local_rank', '--local-rank', type=int, default=0,
                   help='set by torch.distributed launchers')


def parse_with_local_rank(p: argparse.ArgumentParser,
                          argv=None) -> argparse.Namespace:
    """``p.parse_args(argv)``; an old-style ``--local_rank`` becomes
    ``LOCAL_RANK`` (what mmengine reads) unless the launcher set it."""
    import os
    args = p.parse_args(argv)
    os.environ.setdefault('LOCAL_RANK', str(args.local_rank))
    return args


def run_main(main, clean_errors=('ConfigKeyError', 'CheckpointError',
                                 'NonFiniteLossError')) -> None:
    """Run a tool's ``main()``; the project's own input errors (by class
    name, so this module stays import-light) print one line
    ``<Error>: <message>`` and exit 1 instead of a traceback."""
    import sys
    try:
        main()
    except Exception as e:  # noqa: BLE001
        if type(e).__name__ not in clean_errors:
            raise
        print(f'{type(e).__name__}: {e}', file=sys.stderr)
        sys.exit(1)
