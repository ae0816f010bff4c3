"""NIfTI volume -> slice converter machinery shared by BTCV and AbdomenCT-1K.

This module commits one case; :mod:`.run` runs many (in parallel) and writes
the split files and the summary; what a run is asked to do is in
:mod:`.options`, the atomic writers in :mod:`.files`, reading and
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
import os
import os.path as osp
from concurrent.futures import ThreadPoolExecutor
from typing import Callable, List, Optional

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
    'load_case', 'convert_case', 'is_case_done', 'body_fraction',
    'PNG_PARAMS', 'BODY_HU', 'remove_stale_tmp', 'remove_case'
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


def remove_case(out_dir: str, case: str) -> None:
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
    remove_case(out_dir, spec.case)
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
        remove_case(out_dir, spec.case)
        return dict(case=spec.case, status='error', error=str(e))
    except BaseException:
        remove_case(out_dir, spec.case)
        raise
    return dict(case=spec.case, status='done', slices=len(kept))
