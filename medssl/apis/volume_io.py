"""NIfTI volumes in and out of :mod:`medssl.apis.inference`.

Reading: the voxel array in its on-disk dtype and the float32 scaling to HU
(:func:`raw_volume`, :func:`scale_to_hu`), a warning when the values do not
look like HU (:func:`non_hu_warning`), and the canonical RAS+ frame of
``ct_io`` and back (:func:`volume_to_canonical`,
:func:`canonical_to_original`). Writing: a uint8 label volume with the
input's affine and header, atomically (:func:`save_labels`).
"""
import os
import os.path as osp
from typing import Optional, Tuple

import nibabel as nib
import numpy as np

from medssl.datasets.converters import ct_io

__all__ = [
    'raw_volume', 'scale_to_hu', 'non_hu_warning', 'volume_to_canonical',
    'canonical_to_original', 'save_labels'
]


def raw_volume(img: nib.spatialimages.SpatialImage
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw, slope, inter)``: the 3D voxel array in its on-disk dtype
    (memory-mapped for an uncompressed ``.nii``, read once for ``.nii.gz``)
    and the float32 scaling that turns a piece of it into exactly the values
    of ``img.get_fdata(dtype=np.float32)`` (:func:`scale_to_hu`).

    Never a full float copy: an int16 CT volume costs half its float32 size.
    """
    proxy = img.dataobj
    if hasattr(proxy, 'get_unscaled'):  # nibabel ArrayProxy (a file)
        raw = proxy.get_unscaled()
        slope, inter = getattr(proxy, 'slope', 1.0), getattr(
            proxy, 'inter', 0.0)
    else:  # an in-memory image: get_fdata only casts
        raw, slope, inter = np.asanyarray(proxy), 1.0, 0.0
    if raw.ndim == 4 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise ValueError(f'expected a 3D volume, got shape {raw.shape}')
    if raw.dtype.kind not in 'biuf':
        raise ValueError(f'voxel type {raw.dtype} is not a CT intensity')
    # as nibabel's ArrayProxy._get_scaled(dtype=float32)
    return raw, np.float32(slope), np.float32(inter)


def scale_to_hu(raw: np.ndarray, slope, inter) -> np.ndarray:
    """A piece of :func:`raw_volume`'s array -> float32 HU, the values of
    ``get_fdata(dtype=np.float32)``."""
    from nibabel.volumeutils import apply_read_scaling
    return np.asarray(apply_read_scaling(raw, slope, inter),
                      dtype=np.float32)


def non_hu_warning(src: str, img: nib.spatialimages.SpatialImage
                   ) -> Optional[str]:
    """A warning naming ``src`` if its voxels do not look like HU (see
    :func:`medssl.datasets.converters.volume.non_hu_reason`), else None."""
    from medssl.datasets.converters.volume import non_hu_reason
    raw, slope, inter = raw_volume(img)
    lo, hi = (float(v) for v in scale_to_hu(
        np.array([raw.min(), raw.max()]), slope, inter))
    reason = non_hu_reason(img.get_data_dtype(), min(lo, hi), max(lo, hi))
    return None if reason is None else f'{src}: {reason}'


def volume_to_canonical(img: nib.spatialimages.SpatialImage
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """(canonical float32 HU array, ornt of the original array axes).

    Holds the whole volume as float32: for geometry checks; inference
    streams (:func:`medssl.apis.inference.inference_volume`)."""
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f'expected a 3D volume, got shape {data.shape}')
    canonical, _, ornt = ct_io.to_canonical(data, img.affine)
    return np.ascontiguousarray(canonical), ornt


def canonical_to_original(canonical: np.ndarray,
                          ornt: np.ndarray) -> np.ndarray:
    """Inverse of :func:`volume_to_canonical`'s reorientation."""
    return ct_io.from_canonical(canonical, ornt)


def save_labels(labels: np.ndarray, like: nib.spatialimages.SpatialImage,
                path: str) -> nib.Nifti1Image:
    """Write uint8 labels with ``like``'s affine and header."""
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(np.asarray(labels, dtype=np.uint8), like.affine,
                          header)
    out.header.set_slope_inter(1.0, 0.0)
    if hasattr(like.header, 'get_qform'):
        qform, qcode = like.header.get_qform(coded=True)
        sform, scode = like.header.get_sform(coded=True)
        if qcode:
            out.set_qform(qform, int(qcode))
        if scode:
            out.set_sform(sform, int(scode))
    d, name = osp.split(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    # all or nothing: a hidden temporary with the same suffix, then rename
    suffix = '.nii.gz' if name.endswith('.nii.gz') else osp.splitext(name)[1]
    tmp = osp.join(d, f'.{name}.{os.getpid()}.tmp{suffix}')
    try:
        nib.save(out, tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return out
