"""NIfTI volume -> slice converter machinery shared by BTCV and AbdomenCT-1K.

Contract (docs/DESIGN.md, "Converted data layout"):

- every output file is written atomically (temp name in the same folder,
  then ``os.replace``); temp names look like ``.<name>.<pid>.tmp`` and stale
  ones are removed when a conversion starts;
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
import io
import json
import multiprocessing
import os
import os.path as osp
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import cv2
import nibabel as nib
import numpy as np

from .ct_io import IMG_FORMATS, canonical_to_slice, encode_hu

__all__ = [
    'ConversionError', 'CaseSpec', 'ConvertOptions', 'nifti_stem',
    'atomic_write_bytes', 'atomic_write_json', 'write_png', 'read_png',
    'write_npy', 'IMG_FORMATS', 'check_img_format',
    'load_case', 'convert_case', 'convert_cases', 'is_case_done',
    'write_split_files', 'write_summary', 'body_fraction', 'PNG_PARAMS',
    'BODY_HU', 'remove_stale_tmp', 'auto_threads'
]

#: Fixed PNG encoder parameters (deterministic output). Level 1 + RLE is
#: ~2x faster to write than cv2's default (level 3) and ~4% larger on CT
#: slices; label PNGs get 2x smaller with RLE (benchmarks/data_pipeline.py).
PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE
]
#: A pixel counts as body when its HU is above this.
BODY_HU = -500.0
_TMP_RE = re.compile(r'^\..+\.\d+\.tmp$')


class ConversionError(RuntimeError):
    """Bad converter input; the message names the case, file and problem."""


@dataclass
class CaseSpec:
    case: str
    image: str
    label: Optional[str] = None


@dataclass
class ConvertOptions:
    """Options of one conversion run.

    Attributes:
        label_ids: allowed label ids (None: no label check).
        require_label: a case without label file is an error.
        keep_empty: keep slices without body (all air).
        min_body_fraction: drop slices whose body-pixel fraction (HU > -500)
            is <= this (ignored with ``keep_empty``).
        threads: threads encoding/writing the slices of one case (output
            is identical for any value).
        img_format: image slice format, ``'npy'`` (uint16 ``.npy``, default:
            ~2x faster to read and much faster to write than PNG, ~2.4x the
            disk) or ``'png'`` (16-bit PNG). Labels are uint8 PNG either way.
    """
    label_ids: Optional[Sequence[int]] = None
    require_label: bool = False
    keep_empty: bool = True
    min_body_fraction: float = 0.0
    affine_atol: float = 1e-3
    threads: int = 1
    img_format: str = 'npy'
    extra: Dict = field(default_factory=dict)

    def __post_init__(self):
        check_img_format(self.img_format)


def check_img_format(img_format: str) -> str:
    if img_format not in IMG_FORMATS:
        raise ValueError(f'img_format must be one of {sorted(IMG_FORMATS)}, '
                         f'got {img_format!r}')
    return img_format


def nifti_stem(path: str) -> str:
    name = osp.basename(path)
    for ext in ('.nii.gz', '.nii'):
        if name.endswith(ext):
            return name[:-len(ext)]
    return osp.splitext(name)[0]


# ----------------------------------------------------------------- writing
def _tmp_name(path: str) -> str:
    d, name = osp.split(path)
    return osp.join(d, f'.{name}.{os.getpid()}.tmp')


def atomic_write_bytes(path: str, data: bytes) -> None:
    tmp = _tmp_name(path)
    try:
        with open(tmp, 'wb') as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if osp.exists(tmp):
            os.remove(tmp)
        raise


def atomic_write_json(path: str, obj) -> None:
    text = json.dumps(obj, indent=2, sort_keys=True) + '\n'
    atomic_write_bytes(path, text.encode('utf-8'))


def write_png(path: str, arr: np.ndarray) -> None:
    ok, buf = cv2.imencode('.png', arr, PNG_PARAMS)
    if not ok:
        raise ConversionError(f'cannot encode PNG {path}')
    atomic_write_bytes(path, buf.tobytes())


def write_npy(path: str, arr: np.ndarray) -> None:
    """``np.save`` (format 1.0 header, C order: deterministic bytes) to
    memory, then an atomic write."""
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(arr), allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def read_png(path: str) -> np.ndarray:
    arr = cv2.imread(path, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise OSError(f'cannot read image {path}')
    return arr


def remove_stale_tmp(out_dir: str) -> int:
    n = 0
    for sub in ('img_dir', 'ann_dir', 'meta', 'splits', '.'):
        d = osp.join(out_dir, sub)
        if not osp.isdir(d):
            continue
        for name in os.listdir(d):
            if _TMP_RE.match(name):
                os.remove(osp.join(d, name))
                n += 1
    return n


# ----------------------------------------------------------------- reading
def _load_nifti(path: str, case: str, what: str, keep_dtype: bool = False):
    """Load a NIfTI; ``keep_dtype``: integer data without scaling stays
    integer (labels), everything else is ``get_fdata`` float32."""
    if not osp.isfile(path):
        raise ConversionError(f'case {case}: {what} file {path} not found')
    try:
        img = nib.load(path)
        proxy = img.dataobj
        scaled = getattr(proxy, 'slope', 1.0) != 1.0 or \
            getattr(proxy, 'inter', 0.0) != 0.0
        if keep_dtype and not scaled and \
                img.get_data_dtype().kind in 'iub':
            data = np.asanyarray(proxy)
        else:
            data = img.get_fdata(dtype=np.float32)
    except Exception as e:  # truncated gz, bad header, ...
        raise ConversionError(
            f'case {case}: cannot read {what} {path} (corrupt or truncated '
            f'NIfTI?): {type(e).__name__}: {e}') from e
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ConversionError(f'case {case}: {what} {path} is not a 3D '
                              f'volume (shape {data.shape})')
    return img, data


def load_case(spec: CaseSpec, opts: ConvertOptions):
    """Load and validate one case.

    Returns ``(hu, label, meta)``: canonical float32 HU ``(X, Y, Z)``,
    canonical uint8 label (or None) and the meta dict (without ``slices``).
    """
    img, data = _load_nifti(spec.image, spec.case, 'image')
    if not np.all(np.isfinite(data)):
        raise ConversionError(
            f'case {spec.case}: image {spec.image} has NaN/inf voxels')
    label = None
    if spec.label is None and opts.require_label:
        raise ConversionError(f'case {spec.case}: no label file for image '
                              f'{spec.image}')
    if spec.label is not None:
        limg, ldata = _load_nifti(spec.label, spec.case, 'label',
                                  keep_dtype=True)
        if ldata.shape != data.shape:
            raise ConversionError(
                f'case {spec.case}: shape mismatch: image {spec.image} '
                f'{tuple(data.shape)} vs label {spec.label} '
                f'{tuple(ldata.shape)}')
        if not np.allclose(limg.affine, img.affine, atol=opts.affine_atol):
            raise ConversionError(
                f'case {spec.case}: affine mismatch between image '
                f'{spec.image} and label {spec.label}:\n{img.affine}\nvs\n'
                f'{limg.affine}')
        if ldata.dtype.kind not in 'iub':
            frac = ldata != np.round(ldata)
            if frac.any():
                raise ConversionError(
                    f'case {spec.case}: label {spec.label} has non-integer '
                    f'values (e.g. {ldata[frac].flat[0]!r})')
        allowed = set(int(i) for i in (opts.label_ids if opts.label_ids
                                       is not None else range(256)))
        lo, hi = ldata.min(), ldata.max()
        if lo >= 0 and hi <= 255 and allowed.issuperset(
                range(int(lo), int(hi) + 1)):
            # every value in [min, max] is allowed: no full id count needed
            # (it cost ~40 ms per 512x512x24 label, ~15% of an npy run)
            ids = set()
        elif lo < 0 or hi > 255:
            ids = set(np.unique(ldata).astype(np.int64).tolist())
        else:
            ids = set(np.flatnonzero(
                np.bincount(ldata.astype(np.uint8, copy=False).ravel(),
                            minlength=256)).tolist())
        unknown = sorted(ids - allowed)
        if unknown:
            raise ConversionError(
                f'case {spec.case}: label {spec.label} has unknown label '
                f'ids {unknown} (allowed {min(allowed)}..{max(allowed)})')
        label = ldata.astype(np.uint8)

    # reorient the loaded arrays (nibabel's as_closest_canonical on an
    # in-memory image: no second read of the file)
    canon = nib.as_closest_canonical(nib.Nifti1Image(data, img.affine))
    hu = np.asanyarray(canon.dataobj)
    if label is not None:
        label = np.asanyarray(
            nib.as_closest_canonical(nib.Nifti1Image(
                label, img.affine)).dataobj)
    meta = dict(
        case=spec.case,
        image=spec.image,
        label=spec.label,
        original_affine=np.asarray(img.affine, float).tolist(),
        original_shape=[int(s) for s in data.shape],
        original_axcodes=list(nib.aff2axcodes(img.affine)),
        canonical_affine=np.asarray(canon.affine, float).tolist(),
        canonical_shape=[int(s) for s in hu.shape],
        spacing=[float(z) for z in canon.header.get_zooms()[:3]],
        num_slices_total=int(hu.shape[2]))
    # Fortran order: axial slices (fixed z) are contiguous blocks, which makes
    # canonical_to_slice ~5x faster than on a C-ordered (X, Y, Z) array
    hu = np.asfortranarray(hu)
    if label is not None:
        label = np.asfortranarray(label)
    return hu, label, meta


def body_fraction(hu_slice: np.ndarray) -> float:
    return float(np.count_nonzero(hu_slice > BODY_HU)) / hu_slice.size


# ------------------------------------------------------------- converting
def _slice_files(out_dir: str, case: str) -> List[str]:
    """The case's slice files of any image format (and its label PNGs)."""
    files = []
    for sub in ('img_dir', 'ann_dir'):
        files += glob.glob(
            osp.join(out_dir, sub, glob.escape(case) + '_[0-9]*.*'))
    return [f for f in files
            if re.fullmatch(re.escape(case) + r'_\d{4,}\.(png|npy)',
                            osp.basename(f))]


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
        name = f'{case}_{z:04d}'
        if not osp.isfile(osp.join(out_dir, 'img_dir', name + suffix)):
            return None
        if has_label and not osp.isfile(
                osp.join(out_dir, 'ann_dir', name + '.png')):
            return None
    return meta


def convert_case(spec: CaseSpec, out_dir: str, opts: ConvertOptions,
                 after_slice: Optional[Callable] = None) -> dict:
    """Convert one case; returns ``dict(case, status, slices|error)``.

    ``status`` is 'done' (converted now), 'exists' (already committed) or
    'error'. Raises nothing for bad input: errors are returned so the caller
    decides (fail/skip). ``after_slice(case, z)`` is a test hook.
    """
    img_format = check_img_format(opts.img_format)
    meta = is_case_done(out_dir, spec.case, img_format)
    if meta is not None:
        return dict(case=spec.case, status='exists',
                    slices=len(meta['slices']))
    _remove_case(out_dir, spec.case)
    try:
        hu, label, meta = load_case(spec, opts)
        kept = [
            z for z in range(hu.shape[2])
            if opts.keep_empty or body_fraction(canonical_to_slice(hu, z)) >
            opts.min_body_fraction
        ]

        write_img = write_npy if img_format == 'npy' else write_png
        img_suffix = IMG_FORMATS[img_format]

        def write_slice(z):
            name = f'{spec.case}_{z:04d}'
            write_img(osp.join(out_dir, 'img_dir', name + img_suffix),
                      encode_hu(canonical_to_slice(hu, z)))
            if label is not None:
                write_png(osp.join(out_dir, 'ann_dir', name + '.png'),
                          canonical_to_slice(label, z))
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
        if res['status'] == 'error' and on_error == 'fail':
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
    converted = sorted((r for r in results if r['status'] != 'error'),
                       key=lambda r: r['case'])
    skipped = sorted(
        (dict(case=r['case'], reason=r['error'])
         for r in results if r['status'] == 'error'),
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
        names += [f'{case}_{z:04d}' for z in meta['slices']]
    names.sort()
    d = osp.join(out_dir, 'splits')
    os.makedirs(d, exist_ok=True)
    atomic_write_bytes(osp.join(d, f'{split}.txt'),
                       ''.join(n + '\n' for n in names).encode())
    atomic_write_bytes(osp.join(d, f'{split}_cases.txt'),
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
    return summary
