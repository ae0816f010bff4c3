"""One training run per work dir: a lock file holding the owner's pid.

Why: two runs writing into one work dir interleave their logs and overwrite
each other's ``iter_N.pth`` (and a resume then mixes both). The lock is a
file ``<work_dir>/.medssl-train.lock`` created with ``O_CREAT | O_EXCL``
holding ``<pid> <host>``. A second run stops with
:class:`WorkDirLockedError` naming the lock and the pid; a lock left by a
process that died (a kill, a crash) is taken over.
"""
import os
import os.path as osp
import socket
from typing import Optional, Tuple

__all__ = ['WorkDirLockedError', 'WorkDirLock', 'LOCK_NAME']

LOCK_NAME = '.medssl-train.lock'


class WorkDirLockedError(RuntimeError):
    """Another live process trains in this work dir."""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _read_owner(path: str) -> Tuple[Optional[int], str]:
    try:
        with open(path) as f:
            fields = f.read(256).split()
    except OSError:
        return None, ''
    pid = int(fields[0]) if fields and fields[0].isdigit() else None
    return pid, fields[1] if len(fields) > 1 else ''


class WorkDirLock:
    """``with WorkDirLock(work_dir): train()``, or ``acquire()`` /
    ``release()``. Re-acquiring in the process that holds it is allowed."""

    def __init__(self, work_dir: str):
        self.path = osp.join(osp.abspath(work_dir), LOCK_NAME)
        self.held = False

    def acquire(self) -> 'WorkDirLock':
        os.makedirs(osp.dirname(self.path), exist_ok=True)
        me, host = os.getpid(), socket.gethostname()
        for _ in range(3):  # create; or take over a stale lock and retry
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY,
                             0o644)
            except FileExistsError:
                pid, owner_host = _read_owner(self.path)
                if pid == me and owner_host == host:
                    self.held = True
                    return self
                if pid is not None and (owner_host != host
                                        or _pid_alive(pid)):
                    where = f' on {owner_host}' if owner_host != host else ''
                    raise WorkDirLockedError(
                        f'{self.path}: work dir busy: locked by running '
                        f'process {pid}{where}; wait for it, use another '
                        '--work-dir, or delete the lock if that run is gone')
                try:  # stale (dead owner, or unreadable): take it over
                    os.remove(self.path)
                except FileNotFoundError:
                    pass
                continue
            with os.fdopen(fd, 'w') as f:
                f.write(f'{me} {host}\n')
            self.held = True
            return self
        raise WorkDirLockedError(f'{self.path}: could not take over the lock '
                                 '(another run keeps creating it)')

    def release(self) -> None:
        """Remove the lock if this process still owns it."""
        if not self.held:
            return
        self.held = False
        pid, host = _read_owner(self.path)
        if pid == os.getpid() and host == socket.gethostname():
            try:
                os.remove(self.path)
            except FileNotFoundError:
                pass

    def __enter__(self) -> 'WorkDirLock':
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
