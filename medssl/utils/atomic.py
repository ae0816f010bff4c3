"""All-or-nothing file writes: a file appears under its name complete, or
not at all (a kill mid-write leaves only a temporary).

Used for checkpoints (mmengine's ``local`` backend,
:mod:`medssl.utils.checkpoint.mmengine_io`), converted checkpoints
(``selfsup2mmseg``) and every output file of the dataset converters.
"""
import os
import os.path as osp
import uuid
from typing import Optional, Union

__all__ = ['atomic_write_bytes']


def _tmp_path(path: str, tmp_dir: Optional[str]) -> str:
    """A fresh temporary for ``path``: ``.<name>.tmp-<pid>-<hex>`` next to
    it, or ``<pid>-<hex>-<name>`` in ``tmp_dir`` (created) when given."""
    d, name = osp.split(path)
    tag = f'{os.getpid()}-{uuid.uuid4().hex[:8]}'
    if tmp_dir is None:
        return osp.join(d, f'.{name}.tmp-{tag}')
    os.makedirs(tmp_dir, exist_ok=True)
    return osp.join(tmp_dir, f'{tag}-{name}')


def atomic_write_bytes(path: str,
                       data: Union[bytes, memoryview],
                       tmp_dir: Optional[str] = None,
                       durable: bool = True) -> None:
    """Write ``data`` to ``path`` all or nothing: to a temporary, then
    ``os.replace`` (atomic within one file system). A failed write removes
    its temporary and leaves an existing ``path`` untouched.

    Args:
        path: the file to write (its folder is created).
        data: the bytes (anything ``file.write`` takes, e.g. a
            ``memoryview`` of a ``BytesIO`` -- no copy).
        tmp_dir: folder of the temporary; must be on the same file system
            as ``path``. None: a hidden ``.<name>.tmp-<pid>-<hex>`` next to
            ``path`` (what ``--resume`` never picks). The converters give a
            private folder they can clean up wholesale.
        durable: fsync the file and then its folder, so the new content
            survives a power loss, not only a kill (a checkpoint); False
            skips both (thousands of slice files, where a rerun redoes the
            case anyway).
    """
    path = osp.abspath(str(path))
    d = osp.dirname(path)
    os.makedirs(d, exist_ok=True)
    tmp = _tmp_path(path, tmp_dir)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
            if durable:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise
    if not durable:
        return
    try:  # make the rename itself durable
        fd = os.open(d, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass
