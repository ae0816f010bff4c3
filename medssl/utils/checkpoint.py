"""Checkpoint I/O in one place: safe reading, atomic writing, strict loading.

Why: mmengine 0.11 reads every checkpoint with ``torch.load(weights_only=
False)`` -- unpickling a shared checkpoint can run arbitrary code -- and
writes ``iter_N.pth`` straight under its final name, so a kill during the
save leaves a truncated file that ``--resume`` then picks.

* :func:`load_checkpoint` reads with ``torch.load(weights_only=True)`` inside
  ``torch.serialization.safe_globals`` (:func:`allowed_global_names`):
  exactly the globals
  mmengine's own checkpoints need beyond plain tensors/containers (found with
  ``torch.serialization.get_unsafe_globals_in_checkpoint`` on a pretraining
  and an mmseg checkpoint written by ``tools/train.py``): numpy arrays,
  dtypes and scalars plus mmengine's ``HistoryBuffer`` in ``message_hub``,
  and ``builtins.getattr`` -- but only as ``getattr(HistoryBuffer,
  <statistics method>)`` (:func:`_history_buffer_getattr`). Anything else is
  refused with ``CheckpointError: <path>: ...`` naming the global; a
  missing, empty, truncated, text or foreign file gives ``CheckpointError:
  <path>: <what is wrong>`` too. The check is never disabled globally.
* :func:`install_checkpoint_io` (called by ``register_all_modules``, i.e. by
  every tool) makes this reader mmengine's ``CheckpointLoader`` for local
  paths and http(s) URLs -- so ``Runner.load_checkpoint``, ``--resume``,
  ``Pretrained``/``VerifiedPretrained`` init and the analysis tools all read
  safely -- and registers :class:`AtomicLocalBackend` as mmengine's ``local``
  file backend: every checkpoint is written to a hidden temporary file in
  the same folder, fsynced, then renamed (``os.replace``) to its name.
* :func:`load_model_checkpoint`: strict model loading naming the missing /
  unexpected key prefixes (``tools/test.py``, ``medssl.apis.inference``).
* :func:`find_resume_checkpoint`: the checkpoint ``--resume`` continues from.
"""
import glob
import os
import os.path as osp
import pickle
import re
import uuid
import warnings
import zipfile
from collections import Counter
from typing import Callable, Dict, List, Optional, Union

import torch

__all__ = [
    'CheckpointError', 'allowed_global_names', 'load_checkpoint',
    'extract_state_dict', 'load_model_checkpoint', 'non_finite_entries',
    'atomic_write_bytes', 'AtomicLocalBackend', 'install_checkpoint_io',
    'find_resume_checkpoint'
]

#: Remote model-zoo schemes of mmengine that bypass the scheme table.
_ZOO_PREFIXES = ('modelzoo://', 'torchvision://', 'open-mmlab://',
                 'openmmlab://', 'mmcls://', 'pavi://', 's3://')
#: Hidden temporaries of AtomicLocalBackend: ``.<name>.tmp-<pid>-<hex>``.
TMP_RE = re.compile(r'^\..+\.tmp-\d+-[0-9a-f]{8}$')


class CheckpointError(RuntimeError):
    """A checkpoint that cannot (or must not) be read; names the file."""


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
                    map_location: Union[str, Callable, None] = 'cpu'
                    ) -> dict:
    """Read a checkpoint without running code from it.

    Returns the loaded object (a dict: mmengine checkpoints hold ``meta``,
    ``state_dict``, ``message_hub``, ``optimizer``, ...; a bare state dict
    is accepted too). Raises :class:`CheckpointError` ``<path>: <problem>``.
    """
    path = str(path)
    if re.match(r'https?://', path):
        return _safe_http(path, map_location)
    if path.startswith(_ZOO_PREFIXES):
        _refuse_zoo(path)
    path = osp.expanduser(path)
    if not osp.exists(path):
        raise CheckpointError(f'{path}: no such file')
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: not a file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file (0 bytes)')
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
    return ckpt


def extract_state_dict(checkpoint: dict,
                       path: str = '<checkpoint>') -> Dict[str, torch.Tensor]:
    """The flat state dict of a loaded checkpoint, ``module.`` removed."""
    if 'state_dict' in checkpoint:
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict) or not all(
            torch.is_tensor(v) for v in checkpoint.values()):
        raise CheckpointError(f'{path}: no state dict of tensors in it')
    return {(k[7:] if k.startswith('module.') else k): v
            for k, v in checkpoint.items()}


def _prefixes(keys, depth: int = 2) -> str:
    """``decode_head.conv_seg.* (2), head.bias (1)``: keys grouped by their
    first ``depth`` components."""
    counts = Counter(k if k.count('.') < depth else
                     '.'.join(k.split('.')[:depth]) + '.*' for k in keys)
    return ', '.join(f'{p} ({n})' for p, n in sorted(counts.items()))


def load_model_checkpoint(model: torch.nn.Module, path: str,
                          max_mismatch: int = 0,
                          map_location='cpu') -> dict:
    """Load ``path`` into ``model`` strictly; returns the checkpoint.

    ``max_mismatch``: how many missing + unexpected keys are tolerated (BN
    ``num_batches_tracked`` never counts). More, or any shape mismatch, is a
    :class:`CheckpointError` naming the key prefixes, e.g. an SSL checkpoint
    given for a segmentor: ``missing decode_head.conv_seg.* (2), ...``.
    """
    ckpt = load_checkpoint(path, map_location)
    state = extract_state_dict(ckpt, path)
    own = model.state_dict()
    ignore = 'num_batches_tracked'
    missing = [k for k in own if k not in state and ignore not in k]
    unexpected = [k for k in state if k not in own and ignore not in k]
    shapes = [f'{k}: checkpoint {tuple(v.shape)} vs model '
              f'{tuple(own[k].shape)}' for k, v in state.items()
              if k in own and v.shape != own[k].shape]
    problems = []
    if len(missing) + len(unexpected) > max_mismatch:
        if missing:
            problems.append(f'{len(missing)}/{len(own)} model keys missing: '
                            f'{_prefixes(missing)}')
        if unexpected:
            problems.append(f'{len(unexpected)} unexpected keys: '
                            f'{_prefixes(unexpected)}')
    if shapes:
        problems.append(f'{len(shapes)} shape mismatches: ' +
                        '; '.join(shapes[:5]))
    if problems:
        raise CheckpointError(
            f'{path}: does not fit {type(model).__name__}: ' +
            ' | '.join(problems) + ' (a pretraining checkpoint for a '
            'segmentation config? convert it with selfsup2mmseg and train '
            'the head first)' * bool(missing and not shapes))
    model.load_state_dict({k: v for k, v in state.items() if k in own},
                          strict=False)
    return ckpt


def non_finite_entries(obj, prefix: str = '', limit: int = 10) -> List[str]:
    """Names (``a.b.c``) of the floating tensors in ``obj`` holding NaN/inf."""
    out: List[str] = []

    def walk(o, name):
        if len(out) >= limit:
            return
        if torch.is_tensor(o):
            if o.is_floating_point() and not torch.isfinite(o).all():
                n = int((~torch.isfinite(o)).sum())
                out.append(f'{name} ({n}/{o.numel()} non-finite)')
        elif isinstance(o, dict):
            for k, v in o.items():
                walk(v, f'{name}.{k}' if name else str(k))
        elif isinstance(o, (list, tuple)):
            for i, v in enumerate(o):
                walk(v, f'{name}.{i}' if name else str(i))

    walk(obj, prefix)
    return out


# ------------------------------------------------------------------ writing
def atomic_write_bytes(data: bytes, path: str) -> None:
    """Write ``data`` to ``path`` all or nothing: a hidden temporary in the
    same folder (``.<name>.tmp-<pid>-<hex>``), fsync, ``os.replace``."""
    d, name = osp.split(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    tmp = osp.join(d, f'.{name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}')
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _atomic_backend_cls():
    from mmengine.fileio.backends import LocalBackend

    class AtomicLocalBackend(LocalBackend):
        """mmengine's local backend whose writes are atomic."""

        def put(self, obj: bytes, filepath) -> None:
            atomic_write_bytes(obj, str(filepath))

        def put_text(self, obj: str, filepath, encoding='utf-8') -> None:
            atomic_write_bytes(obj.encode(encoding), str(filepath))

    return AtomicLocalBackend


AtomicLocalBackend = _atomic_backend_cls()


def _safe_local(filename, map_location=None):
    return load_checkpoint(filename, map_location)


def _safe_http(filename, map_location=None, model_dir=None, progress=True):
    from .url_cache import url_cache_path  # keyed by the full URL
    d = model_dir or osp.join(torch.hub.get_dir(), 'checkpoints')
    os.makedirs(d, exist_ok=True)
    cached = url_cache_path(filename, d)
    if not osp.isfile(cached):
        try:
            torch.hub.download_url_to_file(filename, cached,
                                           progress=progress)
        except Exception as e:  # noqa: BLE001
            raise CheckpointError(f'{filename}: download failed: {e}') from e
    return load_checkpoint(cached, map_location)


def _refuse_zoo(filename, map_location=None):
    raise CheckpointError(
        f'{filename}: model-zoo names are not read by medssl\'s safe loader; '
        'download the file and give its path')


def install_checkpoint_io() -> None:
    """Route mmengine's checkpoint reading and writing through this module
    (idempotent; see the module docstring)."""
    from mmengine.fileio.backends import register_backend
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme('', _safe_local, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'), _safe_http,
                                     force=True)
    CheckpointLoader.register_scheme(_ZOO_PREFIXES, _refuse_zoo, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` (auto) continues from: the file ``last_checkpoint``
    names if it exists, else the newest ``iter_*.pth`` / ``epoch_*.pth``
    (hidden temporaries of an interrupted save are never candidates)."""
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            named = f.read().strip()
        if named and osp.isfile(named) and \
                not TMP_RE.match(osp.basename(named)):
            return named
    found = []
    for p in glob.glob(osp.join(work_dir, '*.pth')):  # '*' skips dotfiles
        m = re.fullmatch(r'(iter|epoch)_(\d+)\.pth', osp.basename(p))
        if m:
            found.append((int(m.group(2)), p))
    return max(found)[1] if found else None

