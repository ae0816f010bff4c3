"""Reading and validating one case: NIfTI image (+ label) -> canonical
float32 HU and uint8 label arrays and the case's meta dict."""
import os.path as osp
import sys
from typing import Optional

import nibabel as nib
import numpy as np

from .ct_io import to_canonical
from .options import CaseSpec, ConversionError, ConvertOptions

__all__ = ['load_case', 'body_fraction', 'BODY_HU', 'non_hu_reason',
           'check_affine']

BODY_HU = -500.0


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


def non_hu_reason(dtype, lo: float, hi: float) -> Optional[str]:
    """Why voxels of on-disk ``dtype`` with (scaled) values ``lo..hi`` do
    not look like CT numbers in HU, or None.

    CT in HU has air at about -1000 (and a scanner's padding below); an
    8-bit volume, or one without any negative value, is a display export or
    lacks its rescale intercept -- taken as HU as it is, it would be windowed
    as soft tissue/bone everywhere.
    """
    dtype = np.dtype(dtype)
    if dtype.kind == 'b' or (dtype.kind in 'iu' and dtype.itemsize == 1
                             and lo >= -128 and hi <= 255):
        return (f'{dtype} voxels (values {lo:g}..{hi:g}) cannot be CT '
                'numbers in HU (air is -1000 HU): an 8-bit display export? '
                'They are used as HU as they are')
    if lo >= 0:
        return (f'no voxel below 0 HU (values {lo:g}..{hi:g}; air is -1000 '
                'HU): not CT in HU, or a missing rescale intercept? They are '
                'used as HU as they are')
    return None


def check_affine(affine: np.ndarray, case: str, path: str) -> np.ndarray:
    """``ConversionError`` naming the case and file unless ``affine`` is a
    finite 4x4 matrix whose 3x3 part is invertible (a zero, NaN or
    degenerate sform/qform has no orientation to slice along)."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise ConversionError(
            f'case {case}: {path} has a non-finite affine (NaN/inf in the '
            f'sform/qform): {np.round(affine, 4).tolist()}')
    sv = np.linalg.svd(affine[:3, :3], compute_uv=False)
    if sv[-1] <= 1e-6 * max(sv[0], 1e-12):
        raise ConversionError(
            f'case {case}: {path} has a degenerate affine (a zero or '
            f'collinear axis in the sform/qform): '
            f'{np.round(affine, 4).tolist()}')
    return affine


def load_case(spec: CaseSpec, opts: ConvertOptions):
    """Load and validate one case.

    Returns ``(hu, label, meta)``: canonical float32 HU ``(X, Y, Z)``,
    canonical uint8 label (or None) and the meta dict (without ``slices``).
    """
    try:
        return _load_case(spec, opts)
    except ConversionError:
        raise
    except Exception as e:  # noqa: BLE001 -- any other per-case failure
        raise ConversionError(
            f'case {spec.case}: {spec.image}: {type(e).__name__}: {e}') from e


def _load_case(spec: CaseSpec, opts: ConvertOptions):
    img, data = _load_nifti(spec.image, spec.case, 'image')
    if not np.all(np.isfinite(data)):
        raise ConversionError(
            f'case {spec.case}: image {spec.image} has NaN/inf voxels')
    check_affine(img.affine, spec.case, spec.image)
    reason = non_hu_reason(img.get_data_dtype(), float(data.min()),
                           float(data.max()))
    if reason:
        print(f'warning: case {spec.case}: image {spec.image}: {reason}',
              file=sys.stderr)
    label = None
    if spec.label is None and opts.require_label:
        raise ConversionError(f'case {spec.case}: no label file for image '
                              f'{spec.image}')
    if spec.label is not None:
        limg, ldata = _load_nifti(spec.label, spec.case, 'label',
                                  keep_dtype=True)
        check_affine(limg.affine, spec.case, spec.label)
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

    # reorient the loaded arrays (no second read of the file)
    try:
        hu, canonical_affine, _ = to_canonical(data, img.affine)
        if label is not None:
            label = to_canonical(label, img.affine)[0]
    except Exception as e:  # OrientationError, LinAlgError, ...
        raise ConversionError(
            f'case {spec.case}: cannot reorient {spec.image} to RAS+ '
            f'({type(e).__name__}: {e})') from e
    meta = dict(
        case=spec.case,
        image=spec.image,
        label=spec.label,
        original_affine=np.asarray(img.affine, float).tolist(),
        original_shape=[int(s) for s in data.shape],
        original_axcodes=list(nib.aff2axcodes(img.affine)),
        canonical_affine=np.asarray(canonical_affine, float).tolist(),
        canonical_shape=[int(s) for s in hu.shape],
        # float32 like a NIfTI header's zooms (pixdim)
        spacing=[float(np.float32(z))
                 for z in nib.affines.voxel_sizes(canonical_affine)],
        num_slices_total=int(hu.shape[2]))
    return hu, label, meta


def body_fraction(hu_slice: np.ndarray) -> float:
    return float(np.count_nonzero(hu_slice > BODY_HU)) / hu_slice.size

