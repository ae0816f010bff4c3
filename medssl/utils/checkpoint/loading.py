"""Reading a checkpoint without running code from it: ``torch.load(
weights_only=True)`` with an explicit allow-list of globals, every failure a
:class:`CheckpointError` ``<path>: <problem>`` (see the package docstring)."""
import os
import os.path as osp
import pickle
import re
import warnings
import zipfile
from typing import Callable, List, Optional, Union

import torch

from .content import check_checkpoint_content, check_zip_records
from .errors import CheckpointError

__all__ = ['allowed_global_names', 'load_checkpoint', 'load_http_checkpoint',
           'refuse_zoo', 'ZOO_PREFIXES']

#: Remote model-zoo schemes of mmengine that bypass the scheme table.
ZOO_PREFIXES = ('modelzoo://', 'torchvision://', 'open-mmlab://',
                'openmmlab://', 'mmcls://', 'pavi://', 's3://')


def _history_buffer_getattr(obj, name: str):
    """The only ``getattr`` a checkpoint may call: ``HistoryBuffer`` pickles
    its statistics methods as ``getattr(HistoryBuffer, 'mean')`` etc."""
    from mmengine.logging import HistoryBuffer
    methods = {'min', 'max', 'current', 'mean'} | set(
        HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in methods:
        return getattr(obj, name)
    raise pickle.UnpicklingError(
        f'Unsupported global: GLOBAL builtins.getattr called with '
        f'({obj!r}, {name!r})')


def _allowed_globals() -> list:
    import numpy as np
    from mmengine.logging import HistoryBuffer
    try:  # numpy >= 2 moved numpy.core to numpy._core
        from numpy._core import multiarray
    except ImportError:
        from numpy.core import multiarray
    out = [np.ndarray, np.dtype, HistoryBuffer,
           (_history_buffer_getattr, 'builtins.getattr')]
    # BUILD of a dtype checks its class (numpy.dtypes.Float64DType, ...)
    out += sorted({type(np.dtype(c)) for c in np.typecodes['All']
                   if c not in 'OV'}, key=str)
    # checkpoints name these by the module they were *saved* with
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        out += [(multiarray._reconstruct, f'{mod}._reconstruct'),
                (multiarray.scalar, f'{mod}.scalar')]
    return out


def allowed_global_names() -> List[str]:
    """Names of the globals a checkpoint may reference besides torch's."""
    return sorted(g[1] if isinstance(g, tuple) else
                  f'{g.__module__}.{g.__qualname__}'
                  for g in _allowed_globals())


def _describe(path: str, err: BaseException) -> str:
    msg = str(err)
    if 'WeightsUnpickler error:' in msg:  # skip torch's generic preamble
        msg = msg.split('WeightsUnpickler error:', 1)[1].strip()
    found = re.search(r'GLOBAL (\S+?)(\s|$)', msg) or re.search(
        r"(?:but got|function) <?(?:class )?'?([\w.]+)", msg)
    if found:
        name = found.group(1).rstrip('.')
        return (f'refused to unpickle global {name} (not in the allow-list '
                'of medssl.utils.checkpoint: a checkpoint may hold tensors, '
                'containers, numbers, strings, numpy arrays and mmengine '
                'HistoryBuffers only; it may try to run code)')
    if isinstance(err, EOFError):
        return 'empty or truncated file (unexpected end of data)'
    if 'central directory' in msg or 'PytorchStreamReader' in msg or \
            isinstance(err, zipfile.BadZipFile):
        return ('truncated or corrupt checkpoint (the zip archive written by '
                f'torch.save is incomplete): {msg.split(". ")[0]}')
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive
        with open(path, 'rb') as f:
            head = f.read(512)
        kind = 'a text file' if head.isascii() and b'\0' not in head \
            else 'a foreign file'
        return (f'not a PyTorch checkpoint ({kind}, not the zip archive '
                f'torch.save writes; first bytes {head[:16]!r})')
    return f'cannot read checkpoint: {type(err).__name__}: ' \
        f'{msg.splitlines()[0] if msg else ""}'


def load_checkpoint(path: str,
                    map_location: Union[str, Callable, None] = 'cpu',
                    allow_nonfinite: Optional[bool] = None) -> dict:
    """Read a checkpoint without running code from it.

    Returns the loaded object (a dict: mmengine checkpoints hold ``meta``,
    ``state_dict``, ``message_hub``, ``optimizer``, ...; a bare state dict
    is accepted too). Raises :class:`CheckpointError` ``<path>: <problem>``,
    also for content that must not be trusted
    (:func:`check_checkpoint_content`: tensors larger than their bytes on
    disk, compressed zip records, non-string keys, non-finite weights
    unless ``allow_nonfinite``).
    """
    path = str(path)
    if re.match(r'https?://', path):
        return load_http_checkpoint(path, map_location,
                                    allow_nonfinite=allow_nonfinite)
    if path.startswith(ZOO_PREFIXES):
        refuse_zoo(path)
    path = osp.expanduser(path)
    if not osp.exists(path):
        raise CheckpointError(f'{path}: no such file')
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: not a file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file (0 bytes)')
    check_zip_records(path)
    try:
        with torch.serialization.safe_globals(_allowed_globals()), \
                warnings.catch_warnings():
            warnings.simplefilter('ignore', UserWarning)  # pickle protocol
            ckpt = torch.load(path, map_location=map_location,
                              weights_only=True)
    except Exception as e:  # noqa: BLE001 -- every reader error is reported
        raise CheckpointError(f'{path}: {_describe(path, e)}') from e
    if not isinstance(ckpt, dict):
        raise CheckpointError(f'{path}: holds a {type(ckpt).__name__}, not '
                              'a checkpoint dict / state dict')
    check_checkpoint_content(ckpt, path, allow_nonfinite)
    return ckpt


def load_http_checkpoint(filename, map_location=None, model_dir=None,
                         progress=True,
                         allow_nonfinite: Optional[bool] = None):
    """Download once into torch hub's cache, then read safely. The cache
    name includes a hash of the whole URL (:func:`url_cache_path`): two URLs
    with the same file name are two files."""
    from ..url_cache import url_cache_path
    d = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(d, exist_ok=True)
    cached = url_cache_path(filename, d)
    if not osp.isfile(cached):
        tmp = f'{cached}.part-{os.getpid()}'
        try:
            torch.hub.download_url_to_file(filename, tmp, progress=progress)
            os.replace(tmp, cached)
        except Exception as e:  # noqa: BLE001
            if osp.exists(tmp):
                os.remove(tmp)
            raise CheckpointError(f'{filename}: download failed: {e}') from e
    return load_checkpoint(cached, map_location, allow_nonfinite)


def refuse_zoo(filename, map_location=None):
    """mmengine's model-zoo schemes (``open-mmlab://`` ...) load through
    their own readers: refused, the user downloads the file."""
    raise CheckpointError(
        f'{filename}: model-zoo names are not read by medssl\'s safe loader; '
        'download the file and give its path')
