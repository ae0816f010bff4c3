"""What a checkpoint may hold: checks on the zip records before ``torch.load``
and on the loaded tensors / keys / values after it."""
import os.path as osp
import warnings
import zipfile
from typing import Optional

import torch

from .errors import CheckpointError
from .nonfinite import allow_nonfinite_default, non_finite_entries

__all__ = ['check_zip_records', 'check_checkpoint_content']


def check_zip_records(path: str) -> None:
    """Refuse what could expand beyond the bytes on disk before torch reads
    it: ``torch.save`` stores every record uncompressed, so a compressed
    (e.g. DEFLATE) record -- or one claiming more bytes than it occupies --
    can only come from a crafted file (a zip bomb)."""
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # not a (complete) zip: torch.load's error is described
    size = osp.getsize(path)
    for info in infos:
        if info.compress_type != zipfile.ZIP_STORED:
            raise CheckpointError(
                f'{path}: compressed zip record {info.filename} (method '
                f'{info.compress_type}, {info.compress_size} bytes on disk, '
                f'{info.file_size} unpacked); torch.save never compresses, '
                'refusing a record that can expand beyond the file size')
        if info.file_size != info.compress_size or info.file_size > size:
            raise CheckpointError(
                f'{path}: zip record {info.filename} claims {info.file_size} '
                f'bytes but occupies {info.compress_size} (file: {size} '
                'bytes); refusing a corrupt or crafted archive')


def _iter_tensors(obj, name: str = ''):
    """``(dotted name, tensor)`` of every tensor in nested dicts / lists."""
    if torch.is_tensor(obj):
        yield name, obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            yield from _iter_tensors(v, f'{name}.{k}' if name else str(k))
    elif isinstance(obj, (list, tuple)):
        for i, v in enumerate(obj):
            yield from _iter_tensors(v, f'{name}.{i}' if name else str(i))


def _state_dict_of(ckpt: dict) -> Optional[dict]:
    """The model weights of a loaded checkpoint: ``ckpt['state_dict']``, or
    ``ckpt`` itself when it is a bare state dict (holds tensors)."""
    if 'state_dict' in ckpt:
        return ckpt['state_dict']
    if any(torch.is_tensor(v) for v in ckpt.values()):
        return ckpt
    return None


def check_checkpoint_content(ckpt: dict, path: str,
                             allow_nonfinite: Optional[bool] = None) -> None:
    """Checks on what a checkpoint holds, each a :class:`CheckpointError`
    naming ``path``:

    * no tensor is larger than its storage (a stride-0 ``expand`` or an
      overlapping view of 4 bytes would otherwise be materialised into
      gigabytes by the first ``clone``/``copy_``);
    * the state dict's keys are strings;
    * the weights (state dict) and optimizer state are finite, unless
      ``allow_nonfinite`` (None: :func:`allow_nonfinite_default`).
    """
    for name, t in _iter_tensors(ckpt):
        nbytes = t.numel() * t.element_size()
        stored = t.untyped_storage().nbytes()
        # the materialised size is then bounded by the bytes on disk (a
        # stride-0 expand of a large storage to a few elements is harmless)
        if nbytes > stored:
            raise CheckpointError(
                f'{path}: tensor {name} of shape {tuple(t.shape)} '
                f'({nbytes} bytes) is a view of {stored} bytes on disk '
                f'(strides {t.stride()}: an expanded / overlapping tensor); '
                'refusing a tensor larger than its storage')
    state = _state_dict_of(ckpt)
    if state is not None:
        if not isinstance(state, dict):
            raise CheckpointError(f'{path}: state_dict is a '
                                  f'{type(state).__name__}, not a dict')
        bad_keys = [k for k in state if not isinstance(k, str)]
        if bad_keys:
            raise CheckpointError(
                f'{path}: state dict has {len(bad_keys)} non-string keys '
                f'(e.g. {bad_keys[0]!r} of type {type(bad_keys[0]).__name__})'
                '; a state dict maps parameter names to tensors')
    if allow_nonfinite is None:
        allow_nonfinite = allow_nonfinite_default()
    bad = non_finite_entries(state or {}, 'state_dict') + non_finite_entries(
        ckpt.get('optimizer', {}) if state is not ckpt else {}, 'optimizer')
    if bad:
        msg = (f'{path}: non-finite weights (NaN/inf) in {"; ".join(bad)}')
        if not allow_nonfinite:
            raise CheckpointError(
                msg + '; refusing to load them (environment variable '
                'MEDSSL_ALLOW_NONFINITE=1 loads them anyway)')
        warnings.warn(msg + ' (loaded: MEDSSL_ALLOW_NONFINITE)')
