"""Refuse output paths that would overwrite a tool's own input or a
dataset's image/label folders (import-light: os only).

Paths are compared resolved (``realpath``: symlinks, ``..``, ``~``), and
two existing files also by inode (``samefile``: hard links), so no spelling
of the same place slips through.
"""
import os
import os.path as osp
from typing import Iterable, Optional, Tuple

__all__ = ['OutputPathError', 'resolved', 'same_path', 'is_inside',
           'refuse_same_file', 'refuse_inside']


class OutputPathError(ValueError):
    """An output path that would overwrite an input; names both."""


def resolved(path: str) -> str:
    """Absolute path with ``~``, ``..`` and symlinks resolved."""
    return osp.realpath(osp.abspath(osp.expanduser(str(path))))


def same_path(a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` name the same file or folder."""
    if osp.exists(a) and osp.exists(b):
        return osp.samefile(a, b)
    return resolved(a) == resolved(b)


def is_inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or lies below it (resolved)."""
    p, f = resolved(path), resolved(folder)
    return p == f or p.startswith(f.rstrip(os.sep) + os.sep)


def refuse_same_file(output: str, input_: str, what: str = 'input') -> None:
    """Raise :class:`OutputPathError` if ``output`` is ``input_``."""
    if same_path(output, input_):
        raise OutputPathError(
            f'output {output} is the {what} {input_}: refusing to overwrite '
            'it; choose another output path')


def refuse_inside(output: str, folders: Iterable[Tuple[str, Optional[str]]]
                  ) -> None:
    """Raise :class:`OutputPathError` if ``output`` is one of ``folders``
    (``(description, path)`` pairs; None paths are ignored) or lies inside
    one."""
    for what, folder in folders:
        if folder and is_inside(output, folder):
            raise OutputPathError(
                f'output {output} is inside the {what} {folder}: refusing '
                'to write there (it would overwrite or mix with its files); '
                'choose another output folder')
