"""Which checkpoint ``--resume`` (auto) continues from: a complete
``iter_N.pth`` / ``epoch_N.pth`` of the work dir, never a temporary."""
import os
import os.path as osp
import re
import zipfile
from typing import List, Optional

__all__ = ['resume_candidates', 'find_resume_checkpoint', 'RESUME_NAME_RE']


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
