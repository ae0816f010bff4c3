"""What the converter CLIs (tools/dataset_converters/*.py) share."""
import argparse
import json
import sys
from typing import Callable

from .common import ConversionError


def add_worker_args(p: argparse.ArgumentParser) -> None:
    """Options every converter takes: parallelism, format, error policy."""
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


def worker_kwargs(args: argparse.Namespace) -> dict:
    """The converter keyword arguments of :func:`add_worker_args`."""
    return dict(nproc=args.nproc, threads=args.threads,
                img_format=args.img_format, on_error=args.on_error)


def run_converter(convert: Callable, *args, **kwargs) -> int:
    """Run a converter; print its summary (without the per-case list) or
    the ConversionError. Returns the process exit code."""
    try:
        summary = convert(*args, **kwargs)
    except ConversionError as e:
        print(f'ConversionError: {e}', file=sys.stderr)
        return 1
    print(json.dumps({k: v for k, v in summary.items() if k != 'cases'},
                     indent=2, sort_keys=True))
    return 0
