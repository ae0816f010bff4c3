"""Run a converter: many cases (in parallel), then the split files and
``summary.json`` (the contract is in :mod:`.common`)."""
import json
import multiprocessing
import os
import os.path as osp
import sys
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .common import convert_case, is_case_done, remove_case
from .ct_io import slice_name
from .files import atomic_write_json, remove_stale_tmp, write_bytes
from .options import (CaseSpec, ConversionError, ConvertOptions,
                      check_img_format)

__all__ = ['run_conversion', 'convert_cases', 'auto_threads',
           'write_split_files', 'write_summary']


def run_conversion(specs: Sequence[CaseSpec], out_dir: str,
                   label_ids: Sequence[int], require_label: bool, *,
                   keep_empty: bool, min_body_fraction: float = 0.0,
                   nproc: int = 1, on_error: str = 'fail',
                   progress: bool = True, threads: Optional[int] = None,
                   img_format: str = 'npy',
                   after_slice: Optional[Callable] = None
                   ) -> Tuple[List[dict], List[dict], ConvertOptions]:
    """The run every converter (``convert_btcv``, ``convert_abdomen1k``)
    makes, with the options they all take (see :class:`ConvertOptions` and
    :func:`convert_cases`): ``nproc`` processes (one case each),
    ``threads`` slice writers per process, ``on_error`` 'fail' or 'skip',
    ``img_format`` 'npy' or 'png', ``after_slice`` a test hook.

    Returns ``(converted, skipped, opts)``.
    """
    opts = ConvertOptions(label_ids=label_ids, require_label=require_label,
                          keep_empty=keep_empty,
                          min_body_fraction=min_body_fraction,
                          threads=auto_threads(threads),
                          img_format=img_format)
    converted, skipped = convert_cases(specs, out_dir, opts, nproc, on_error,
                                       progress, after_slice)
    return converted, skipped, opts


def auto_threads(threads: Optional[int]) -> int:
    """Slice-writing threads per case: ``threads`` if given, else 1.

    (Threads help only on idle cores: on a loaded 2-core machine 2 threads
    were slower than 1 in benchmarks/data_pipeline.py, so 1 is the default;
    ``nproc``, the processes, is the main knob.)"""
    return max(1, int(threads)) if threads is not None else 1


def _convert_task(args):
    spec, out_dir, opts = args
    return convert_case(spec, out_dir, opts)


def convert_cases(specs: Sequence[CaseSpec],
                  out_dir: str,
                  opts: ConvertOptions,
                  nproc: int = 1,
                  on_error: str = 'fail',
                  progress: bool = True,
                  after_slice: Optional[Callable] = None
                  ) -> Tuple[List[dict], List[dict]]:
    """Convert cases (in parallel with ``nproc > 1``).

    Returns ``(converted, skipped)``: results of the committed cases (sorted
    by case) and ``dict(case, reason)`` of the failed ones (``on_error=
    'skip'``). With ``on_error='fail'`` the first error raises
    :class:`ConversionError`; cases already committed stay valid, nothing
    half-written remains.
    """
    if on_error not in ('fail', 'skip'):
        raise ValueError(f'on_error must be fail or skip, got {on_error!r}')
    names = [s.case for s in specs]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise ConversionError(f'duplicate case ids {dup}: ' + ', '.join(
            s.image for s in specs if s.case in dup))
    for sub in ('img_dir', 'ann_dir', 'meta', 'splits'):
        os.makedirs(osp.join(out_dir, sub), exist_ok=True)
    remove_stale_tmp(out_dir)

    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(specs))
    results = []

    def handle(res):
        if bar is not None:
            bar.update()
        if res['status'] == 'empty':
            print(f'warning: {res["error"]}', file=sys.stderr)
        elif res['status'] == 'error' and on_error == 'fail':
            raise ConversionError(res['error'])
        results.append(res)

    if nproc <= 1 or len(specs) <= 1:
        for spec in specs:
            handle(convert_case(spec, out_dir, opts, after_slice))
    else:
        ctx = multiprocessing.get_context('fork') \
            if 'fork' in multiprocessing.get_all_start_methods() \
            else multiprocessing.get_context()
        pool = ctx.Pool(min(nproc, len(specs)))
        try:
            for res in pool.imap_unordered(
                    _convert_task, [(s, out_dir, opts) for s in specs]):
                handle(res)
            pool.close()
        except BaseException:
            pool.terminate()
            pool.join()
            # workers killed mid-case leave slices without meta: remove them
            for spec in specs:
                if is_case_done(out_dir, spec.case,
                                opts.img_format) is None:
                    remove_case(out_dir, spec.case)
            remove_stale_tmp(out_dir)
            raise
        pool.join()
    if bar is not None:
        print()
    remove_stale_tmp(out_dir)
    converted = sorted((r for r in results if 'error' not in r),
                       key=lambda r: r['case'])
    skipped = sorted(  # failed (on_error='skip') and empty cases
        (dict(case=r['case'], reason=r['error'])
         for r in results if 'error' in r),
        key=lambda r: r['case'])
    return converted, skipped


def write_split_files(out_dir: str, split: str, cases: Sequence[str]) -> int:
    """``splits/<split>.txt`` (sorted slice names) and
    ``splits/<split>_cases.txt`` from the committed metas; returns the number
    of slices."""
    names = []
    for case in sorted(cases):
        with open(osp.join(out_dir, 'meta', f'{case}.json')) as f:
            meta = json.load(f)
        names += [slice_name(case, z) for z in meta['slices']]
    names.sort()
    d = osp.join(out_dir, 'splits')
    os.makedirs(d, exist_ok=True)
    write_bytes(osp.join(d, f'{split}.txt'),
                ''.join(n + '\n' for n in names).encode())
    write_bytes(osp.join(d, f'{split}_cases.txt'),
                ''.join(c + '\n' for c in sorted(cases)).encode())
    return len(names)


def write_summary(out_dir: str, dataset: str, converted: List[dict],
                  skipped: List[dict], splits: Dict[str, int],
                  img_format: str = 'npy') -> dict:
    summary = dict(
        dataset=dataset,
        img_format=check_img_format(img_format),
        cases=[r['case'] for r in converted],
        num_cases=len(converted),
        slices=int(sum(r['slices'] for r in converted)),
        skipped=skipped,
        splits=splits)
    atomic_write_json(osp.join(out_dir, 'summary.json'), summary)
    remove_stale_tmp(out_dir)  # the (empty) private temp folders
    return summary
