"""Numbered stages with timing, and one stage's runs in parallel."""
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Iterable, List, Optional, Sequence, TypeVar

from medssl.utils.process import REPO, run_logged

__all__ = ['Progress', 'run_parallel', 'run_tool']

T = TypeVar('T')
R = TypeVar('R')


class Progress:
    """Prints ``[k/N] title ...`` when a stage starts and its time when it
    ends; ``N`` is fixed up front so the last stage reads ``[N/N]``."""

    def __init__(self, titles: Sequence[str]) -> None:
        self.titles = list(titles)
        self.k = 0
        self.start = self.stage_start = time.time()

    def begin(self, title: str) -> None:
        if self.k:
            self.end()
        self.k += 1
        self.stage_start = time.time()
        print(f'[{self.k}/{len(self.titles)}] {title} ...', flush=True)

    def end(self) -> None:
        print(f'      done in {time.time() - self.stage_start:.0f} s '
              f'(total {self.elapsed():.0f} s)', flush=True)

    def elapsed(self) -> float:
        return time.time() - self.start


def run_parallel(fn: Callable[[T], R], items: Iterable[T], jobs: int,
                 label: Optional[Callable[[T, R], str]] = None) -> List[R]:
    """``[fn(item) ...]`` in ``jobs`` threads, each waiting on its own
    subprocess (so the work runs as ``jobs`` parallel processes); prints
    ``label(item, result)`` per finished item, in order."""
    items = list(items)
    t0 = time.time()
    out = []
    with ThreadPoolExecutor(max(1, jobs)) as pool:
        for k, (item, res) in enumerate(zip(items, pool.map(fn, items))):
            out.append(res)
            text = label(item, res) if label else None
            if text:
                print(f'  [{k + 1}/{len(items)}] {text} '
                      f'({time.time() - t0:.0f} s)', flush=True)
    return out


def run_tool(cmd: List[str], log: str, dry: bool, env: dict) -> None:
    """Run ``cmd`` from the repository root with its output in ``log``
    (``dry``: print it only)."""
    if dry:
        print(' '.join(cmd))
        return
    run_logged(cmd, log, cwd=REPO, env=env, tail_chars=2500)
