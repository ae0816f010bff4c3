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
  What the file holds is checked too (:func:`check_checkpoint_content`):
  no compressed zip record and no tensor larger than its storage (a
  stride-0 ``expand`` of 4 bytes is not materialised into gigabytes), string
  state-dict keys, finite weights unless ``MEDSSL_ALLOW_NONFINITE=1``
  (``tools/train.py --allow-nonfinite``).
* :func:`install_checkpoint_io` (called by ``register_all_modules``, i.e. by
  every tool) makes this reader mmengine's ``CheckpointLoader`` for local
  paths and http(s) URLs -- so ``Runner.load_checkpoint``, ``--resume``,
  ``Pretrained``/``VerifiedPretrained`` init and the analysis tools all read
  safely -- and registers :class:`AtomicLocalBackend` as mmengine's ``local``
  file backend: every checkpoint is written to a hidden temporary file in
  the same folder, fsynced, then renamed (``os.replace``) to its name.
* :func:`load_model_checkpoint`: strict model loading naming the missing /
  unexpected key prefixes (``tools/test.py``, ``medssl.apis.inference``).
* :func:`find_resume_checkpoint`: the checkpoint ``--resume`` continues from
  (a complete ``iter_N.pth`` / ``epoch_N.pth`` of the work dir). The
  resume itself -- strict, never executing ``meta`` -- is
  :class:`medssl.utils.resume.SafeRunner`.
"""
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
    'find_resume_checkpoint', 'resume_candidates', 'check_checkpoint_content',
    'allow_nonfinite_default'
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
        return _safe_http(path, map_location, allow_nonfinite=allow_nonfinite)
    if path.startswith(_ZOO_PREFIXES):
        _refuse_zoo(path)
    path = osp.expanduser(path)
    if not osp.exists(path):
        raise CheckpointError(f'{path}: no such file')
    if not osp.isfile(path):
        raise CheckpointError(f'{path}: not a file')
    if osp.getsize(path) == 0:
        raise CheckpointError(f'{path}: empty file (0 bytes)')
    _check_zip_records(path)
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


# ------------------------------------------------------------ content checks
def _check_zip_records(path: str) -> None:
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


def allow_nonfinite_default() -> bool:
    """Whether non-finite weights are accepted when a caller does not say:
    only with the environment variable ``MEDSSL_ALLOW_NONFINITE=1`` (set by
    ``tools/train.py --allow-nonfinite``)."""
    return os.environ.get('MEDSSL_ALLOW_NONFINITE', '') in ('1', 'true',
                                                            'yes')


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


def _safe_http(filename, map_location=None, model_dir=None, progress=True,
               allow_nonfinite: Optional[bool] = None):
    """Download once into torch hub's cache, then read safely. The cache
    name includes a hash of the whole URL (:func:`url_cache_path`): two URLs
    with the same file name are two files."""
    from .url_cache import url_cache_path
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


#: What auto-resume may continue from: a checkpoint the CheckpointHook wrote.
RESUME_NAME_RE = re.compile(r'(iter|epoch)_(\d+)\.pth')


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` (symlinks resolved) lies strictly inside ``folder``."""
    path, folder = osp.realpath(path), osp.realpath(folder)
    return path != folder and osp.commonpath([path, folder]) == folder


def _complete_checkpoint(path: str) -> bool:
    """A plain file (no symlink) holding a complete zip archive (the end of
    central directory record torch.save writes last is present)."""
    if osp.islink(path) or not osp.isfile(path):
        return False
    try:
        with zipfile.ZipFile(path) as zf:
            return len(zf.infolist()) > 0
    except (zipfile.BadZipFile, OSError, ValueError):
        return False


def resume_candidates(work_dir: str) -> List[str]:
    """The complete ``iter_N.pth`` / ``epoch_N.pth`` files directly in
    ``work_dir``, newest (highest N) first. Hidden temporaries of an
    interrupted save, ``best_*.pth``, symlinks and truncated files are never
    candidates."""
    found = []
    for name in os.listdir(work_dir) if osp.isdir(work_dir) else ():
        m = RESUME_NAME_RE.fullmatch(name)
        path = osp.join(work_dir, name)
        if m and _complete_checkpoint(path):
            found.append((int(m.group(2)), m.group(1) == 'iter', path))
    return [p for *_, p in sorted(found, reverse=True)]


def find_resume_checkpoint(work_dir: str) -> Optional[str]:
    """What ``--resume`` (auto) continues from: one of
    :func:`resume_candidates` -- the one ``last_checkpoint`` names if it is
    one of them, else the newest. ``None`` if there is none.
    ``last_checkpoint`` is only a hint: a name in it that is gone, cut short,
    a temporary or outside the work dir is ignored."""
    candidates = resume_candidates(work_dir)
    last = osp.join(work_dir, 'last_checkpoint')
    if candidates and osp.isfile(last):
        with open(last, errors='replace') as f:
            named = f.read(4096).strip()
        real = {osp.realpath(p): p for p in candidates}
        if named and osp.realpath(named) in real:
            return real[osp.realpath(named)]
    return candidates[0] if candidates else None
