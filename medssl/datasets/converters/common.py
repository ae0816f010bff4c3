"""NIfTI volume -> slice converter machinery shared by BTCV and AbdomenCT-1K.

This module commits cases and runs them in parallel; what a run is asked to
do is in :mod:`.options`, the atomic writers in :mod:`.files`, reading and
validating a case in :mod:`.volume`, slice names and geometry in
:mod:`.ct_io` (all re-exported here).

Contract (docs/DESIGN.md, "Converted data layout"):

- every output file is written atomically (a temporary in the private
  hidden folder ``.medssl-tmp/`` of its folder, then ``os.replace``); those
  folders -- and nothing else, so no user file can match -- are removed
  when a conversion starts and ends;
- only ``*.nii.gz`` / ``*.nii`` files are cases (``options.glob_nifti``);
- a case without any kept slice (no body in any slice, e.g. all air) is
  skipped with a warning naming it and recorded in ``skipped`` whatever
  ``on_error`` is; it is never a training case;
- image slices are uint16 ``.npy`` (``img_format='npy'``, default) or
  16-bit PNG (``img_format='png'``); label slices are always uint8 PNG;
- a case is committed as a whole: all slice files first, the meta JSON
  ``meta/<case>.json`` last (the "done" marker, recording ``img_format``).
  On a rerun, cases with a valid meta of the same ``img_format`` whose
  slices all exist are skipped; any other case is redone from scratch (its
  old slices of either format removed first);
- outputs are deterministic (fixed PNG parameters, ``np.save`` headers, JSON
  with sorted keys, no timestamps), so a rerun after a kill gives
  byte-identical files;
- bad input raises :class:`ConversionError` naming the case, the file and
  the problem, and never leaves a half-written case behind.
"""
import glob
import json
import multiprocessing
import os
import os.path as osp
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, Dict, List, Optional, Sequence, Tuple

from .ct_io import (IMG_FORMATS, canonical_to_slices, encode_hu,
                    parse_slice_name, slice_name)
from .files import (PNG_PARAMS, atomic_write_json, read_png, remove_stale_tmp,
                    write_bytes, write_label_png, write_npy, write_png)
from .options import (CaseSpec, ConversionError, ConvertOptions,
                      check_img_format, nifti_stem)
from .volume import BODY_HU, body_fraction, load_case

__all__ = [
    'ConversionError', 'CaseSpec', 'ConvertOptions', 'nifti_stem',
    'write_bytes', 'atomic_write_json', 'write_png', 'read_png',
    'write_npy', 'write_label_png', 'IMG_FORMATS', 'check_img_format',
    'load_case', 'convert_case', 'convert_cases', 'is_case_done',
    'write_split_files', 'write_summary', 'body_fraction', 'PNG_PARAMS',
    'BODY_HU', 'remove_stale_tmp', 'auto_threads'
]


def _slice_files(out_dir: str, case: str) -> List[str]:
    """The case's slice files of any image format (and its label PNGs)."""
    files = []
    for sub in ('img_dir', 'ann_dir'):
        files += glob.glob(
            osp.join(out_dir, sub, glob.escape(case) + '_[0-9]*.*'))
    return [f for f in files if f.endswith(('.png', '.npy'))
            and _parse_or_none(f) == case]


def _parse_or_none(path: str) -> Optional[str]:
    try:
        return parse_slice_name(path)[0]
    except ValueError:
        return None


def _remove_case(out_dir: str, case: str) -> None:
    meta = osp.join(out_dir, 'meta', f'{case}.json')
    if osp.exists(meta):
        os.remove(meta)
    for f in _slice_files(out_dir, case):
        os.remove(f)


def is_case_done(out_dir: str, case: str,
                 img_format: str = 'npy') -> Optional[dict]:
    """The case's meta if it was committed completely with image slices in
    ``img_format``, else None (a meta without ``img_format`` predates the
    option and means ``'png'``)."""
    suffix = IMG_FORMATS[check_img_format(img_format)]
    path = osp.join(out_dir, 'meta', f'{case}.json')
    if not osp.isfile(path):
        return None
    try:
        with open(path) as f:
            meta = json.load(f)
        slices = meta['slices']
        has_label = meta.get('label') is not None
        fmt = meta.get('img_format', 'png')
    except Exception:
        return None
    if fmt != img_format:
        return None
    for z in slices:
        name = slice_name(case, z)
        if not osp.isfile(osp.join(out_dir, 'img_dir', name + suffix)):
            return None
        if has_label and not osp.isfile(
                osp.join(out_dir, 'ann_dir', name + '.png')):
            return None
    return meta


def convert_case(spec: CaseSpec, out_dir: str, opts: ConvertOptions,
                 after_slice: Optional[Callable] = None) -> dict:
    """Convert one case; returns ``dict(case, status, slices|error)``.

    ``status`` is 'done' (converted now), 'exists' (already committed),
    'empty' (no slice kept: nothing written) or 'error'. Raises nothing for
    bad input: errors are returned so the caller decides (fail/skip).
    ``after_slice(case, z)`` is a test hook.
    """
    img_format = check_img_format(opts.img_format)
    meta = is_case_done(out_dir, spec.case, img_format)
    if meta is not None:
        return dict(case=spec.case, status='exists',
                    slices=len(meta['slices']))
    _remove_case(out_dir, spec.case)
    try:
        hu, label, meta = load_case(spec, opts)
        # (the body fraction of a slice does not depend on its orientation)
        kept = [
            z for z in range(hu.shape[2])
            if opts.keep_empty or body_fraction(hu[:, :, z]) >
            opts.min_body_fraction
        ]
        if not kept:
            return dict(case=spec.case, status='empty', error=(
                f'case {spec.case}: no slice with body (HU > {BODY_HU:g} on '
                f'more than {opts.min_body_fraction:g} of the slice) in '
                f'{spec.image}; skipped, not a training case'))

        write_img = write_npy if img_format == 'npy' else write_png
        img_suffix = IMG_FORMATS[img_format]
        # every slice in one pass each (encode, reorder to (Z, Y, X))
        # instead of a strided copy per slice
        img_slices = canonical_to_slices(encode_hu(hu))
        del hu
        lab_slices = None if label is None else canonical_to_slices(label)

        def write_slice(z):
            name = slice_name(spec.case, z)
            write_img(osp.join(out_dir, 'img_dir', name + img_suffix),
                      img_slices[z])
            if lab_slices is not None:
                write_label_png(osp.join(out_dir, 'ann_dir', name + '.png'),
                                lab_slices[z])
            return z

        threads = max(1, int(opts.threads))
        if threads == 1:
            results = map(write_slice, kept)
            pool = None
        else:  # cv2.imencode / file writes release the GIL
            pool = ThreadPoolExecutor(threads)
            results = pool.map(write_slice, kept)
        try:
            for z in results:
                if after_slice is not None:
                    after_slice(spec.case, z)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        meta['slices'] = kept
        meta['img_format'] = img_format
        atomic_write_json(osp.join(out_dir, 'meta', f'{spec.case}.json'),
                          meta)
    except ConversionError as e:
        _remove_case(out_dir, spec.case)
        return dict(case=spec.case, status='error', error=str(e))
    except BaseException:
        _remove_case(out_dir, spec.case)
        raise
    return dict(case=spec.case, status='done', slices=len(kept))


def auto_threads(threads: Optional[int], nproc: int) -> int:
    """Slice-writing threads per case: ``threads`` if given, else 1.

    (Threads help only on idle cores: on a loaded 2-core machine 2 threads
    were slower than 1 in benchmarks/data_pipeline.py, so 1 is the default;
    ``nproc`` is the main knob.)"""
    del nproc
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
                    _remove_case(out_dir, spec.case)
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
