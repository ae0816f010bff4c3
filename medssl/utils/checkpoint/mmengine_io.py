"""Make mmengine read checkpoints through :func:`load_checkpoint` and write
them atomically (:class:`AtomicLocalBackend`)."""
from ..atomic import atomic_write_bytes
from .loading import (ZOO_PREFIXES, load_checkpoint, load_http_checkpoint,
                      refuse_zoo)

__all__ = ['AtomicLocalBackend', 'install_checkpoint_io']


def _atomic_backend_cls():
    from mmengine.fileio.backends import LocalBackend

    class AtomicLocalBackend(LocalBackend):
        """mmengine's local backend whose writes are atomic."""

        def put(self, obj: bytes, filepath) -> None:
            atomic_write_bytes(str(filepath), obj)

        def put_text(self, obj: str, filepath, encoding='utf-8') -> None:
            atomic_write_bytes(str(filepath), obj.encode(encoding))

    return AtomicLocalBackend


AtomicLocalBackend = _atomic_backend_cls()


def _safe_local(filename, map_location=None):
    return load_checkpoint(filename, map_location)


def install_checkpoint_io() -> None:
    """Route mmengine's checkpoint reading (local paths, http(s) URLs;
    model-zoo names refused) through :func:`load_checkpoint` and its
    ``local`` file backend through :class:`AtomicLocalBackend`
    (idempotent)."""
    from mmengine.fileio.backends import register_backend
    from mmengine.runner.checkpoint import CheckpointLoader
    CheckpointLoader.register_scheme('', _safe_local, force=True)
    CheckpointLoader.register_scheme(('http://', 'https://'),
                                     load_http_checkpoint, force=True)
    CheckpointLoader.register_scheme(ZOO_PREFIXES, refuse_zoo, force=True)
    register_backend('local', AtomicLocalBackend, force=True, prefixes='')
