"""What the converter CLIs (tools/dataset_converters/*.py) share: their
options (defined in the light :mod:`medssl.cli`, re-exported here) and the
run/print wrapper."""
import json
import sys
from typing import Callable

from medssl.cli import add_converter_args, converter_kwargs
from .common import ConversionError

__all__ = ['add_converter_args', 'converter_kwargs', 'run_converter']


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
