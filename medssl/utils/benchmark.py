"""Timing and memory helpers shared by the scripts in ``benchmarks/``.

One way to time a call (warm-up runs, then per-call wall times with the
device synchronised so GPU work is counted), one way to sample peak RSS, one
way to print a result table.
"""
import os
import threading
import time
from typing import Callable, List, Optional, Sequence

__all__ = ['sync', 'rss_bytes', 'PeakRSS', 'time_calls', 'format_table']


def sync(device: Optional[str] = None) -> None:
    """Wait for queued CUDA work (no-op on CPU)."""
    if device is not None and str(device).startswith('cuda'):
        import torch
        torch.cuda.synchronize()


def rss_bytes() -> int:
    """Resident set size of this process (Linux ``/proc/self/statm``)."""
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE')


class PeakRSS:
    """Peak RSS while the ``with`` block runs, sampled by a thread.

    ``start`` is the RSS on entry, ``peak`` the largest sample, ``delta``
    their difference in bytes.
    """

    def __init__(self, interval: float = 0.002) -> None:
        self.interval = interval
        self.start = self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, rss_bytes())
            time.sleep(self.interval)

    def __enter__(self) -> 'PeakRSS':
        self.start = self.peak = rss_bytes()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())

    @property
    def delta(self) -> int:
        return self.peak - self.start


def time_calls(fn: Callable[[], object],
               iters: int,
               warmup: int = 0,
               device: Optional[str] = None) -> List[float]:
    """Seconds of each of ``iters`` calls of ``fn`` after ``warmup`` untimed
    calls; ``device`` 'cuda...' synchronises before each clock read."""
    for _ in range(warmup):
        fn()
    sync(device)
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def format_table(rows: Sequence[Sequence[object]],
                 header: Optional[Sequence[str]] = None) -> str:
    """A Markdown table (pipes, header separator) of ``rows``."""
    rows = [[str(c) for c in r] for r in rows]
    if header is None:
        header, rows = rows[0], rows[1:]
    header = [str(h) for h in header]
    width = [max(len(r[i]) for r in [header] + rows)
             for i in range(len(header))]

    def line(cells):
        return '| ' + ' | '.join(
            c.ljust(w) for c, w in zip(cells, width)) + ' |'

    sep = '|' + '|'.join('-' * (w + 2) for w in width) + '|'
    return '\n'.join([line(header), sep] + [line(r) for r in rows])
