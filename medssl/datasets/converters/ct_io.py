"""The conventions every converter, dataset and inference tool shares.

1. **Lossless HU storage.** A slice is stored as a uint16 array holding
   ``round(HU) + HU_OFFSET`` (``HU_OFFSET = 1024``), in a ``.npy`` file
   (default) or a 16-bit PNG (``img_format='png'``); :func:`read_slice`
   reads either. HU below -1024 (scanner padding outside the field of view:
   -2048, -3024) is clipped to -1024 (air);
   everything up to 64511 HU is kept exactly. One conversion serves every HU
   window, because windowing happens in the data pipeline.

2. **Slice orientation.** Volumes are reoriented to the closest canonical (RAS+)
   frame first. Axial slice ``z`` of the canonical array ``vol[x, y, z]`` is
   stored as a 2D image with rows running anterior -> posterior and columns
   running patient-right -> patient-left (the radiological display used by CT
   viewers): ``img = vol[::-1, ::-1, z].T``. :func:`slices_to_canonical` is the
   exact inverse, used to write predictions back to 3D.
   :func:`to_canonical` / :func:`from_canonical` are the one reorientation
   (nibabel's ``as_closest_canonical`` on arrays: the converters and
   :mod:`medssl.apis.inference` both use it).

3. **Slice names.** Slice ``z`` of case ``case`` is stored as
   ``<case>_<z:04d>`` (``img0001_0007.npy``; the case id may itself contain
   ``_``): :func:`slice_name` writes it, :func:`parse_slice_name` reads it.
"""
import os.path as osp
import re
from typing import Sequence, Tuple

import numpy as np
from nibabel.orientations import (apply_orientation, axcodes2ornt,
                                  inv_ornt_aff, io_orientation, ornt_transform)

HU_OFFSET = 1024
HU_MIN = -HU_OFFSET
HU_MAX = np.iinfo(np.uint16).max - HU_OFFSET
#: Image slice formats of the converters -> file suffix.
IMG_FORMATS = {'npy': '.npy', 'png': '.png'}


def encode_hu(hu: np.ndarray) -> np.ndarray:
    """HU (any float/int dtype) -> uint16 storage values."""
    hu = np.clip(np.rint(hu), HU_MIN, HU_MAX)
    return (hu + HU_OFFSET).astype(np.uint16)


def decode_hu(stored: np.ndarray) -> np.ndarray:
    """uint16 storage values -> float32 HU."""
    if stored.dtype != np.uint16:
        raise TypeError(f'expected a uint16 CT slice, got {stored.dtype}')
    return stored.astype(np.float32) - HU_OFFSET


def canonical_to_slice(vol: np.ndarray, z: int) -> np.ndarray:
    """Axial slice ``z`` of a canonical (RAS+) ``(X, Y, Z)`` array as a
    ``(Y, X)`` image: row 0 = most anterior, column 0 = patient's right."""
    return np.ascontiguousarray(vol[::-1, ::-1, z].T)


def canonical_to_slices(vol: np.ndarray) -> np.ndarray:
    """All axial slices at once: ``(Z, Y, X)`` C-contiguous, ``out[z] ==
    canonical_to_slice(vol, z)``, in one copy (per-slice copies of a
    C-ordered volume each walk the whole array with stride ``Y * Z``)."""
    return np.ascontiguousarray(vol[::-1, ::-1, :].transpose(2, 1, 0))


def slices_to_canonical(slices: Sequence[np.ndarray]) -> np.ndarray:
    """Inverse of :func:`canonical_to_slice` for a full stack of slices
    ordered by ``z``: returns the ``(X, Y, Z)`` canonical array."""
    stack = np.stack(list(slices), axis=-1)  # (Y, X, Z)
    return np.ascontiguousarray(stack.transpose(1, 0, 2)[::-1, ::-1, :])


def read_slice(path: str) -> np.ndarray:
    """Read a stored CT slice (uint16 storage values, 2D), dispatching on
    the suffix: ``.npy`` -> ``np.load`` (no pickles), anything else ->
    ``cv2.imread(IMREAD_UNCHANGED)`` (16-bit PNG).

    Raises ``OSError`` naming the file if it is missing or unreadable and
    ``TypeError`` naming the file if it is not a 2D uint16 array (8-bit
    images get their own message: their values are not HU).
    """
    if path.endswith('.npy'):
        try:
            stored = np.load(path, allow_pickle=False)
        except Exception as e:  # missing, truncated, bad header, pickle
            what = 'missing' if not osp.exists(path) else 'unreadable'
            raise OSError(f'cannot read CT slice {path} ({what}: '
                          f'{type(e).__name__}: {e})') from e
        if not isinstance(stored, np.ndarray):
            raise OSError(f'cannot read CT slice {path} (not a single '
                          f'array: {type(stored).__name__})')
    else:
        import cv2
        stored = cv2.imread(path, cv2.IMREAD_UNCHANGED)
        if stored is None:
            what = 'missing' if not osp.exists(path) else 'unreadable'
            raise OSError(f'cannot read CT slice {path} ({what})')
    if stored.dtype.itemsize == 1 and stored.dtype.kind in 'iu':
        # an 8-bit picture (screenshot, windowed export) has no HU in it:
        # read as stored values it would train on HU -1024..-769
        lo, hi = (int(stored.min()), int(stored.max())) if stored.size \
            else (0, 0)
        raise TypeError(
            f'{path} is an 8-bit image ({stored.dtype}, values {lo}..{hi}), '
            'not a CT slice: slices hold HU as uint16 (HU + 1024); convert '
            'the CT volumes with tools/dataset_converters')
    if stored.dtype != np.uint16 or stored.ndim != 2:
        raise TypeError(
            f'{path} is not a single-channel uint16 CT slice (dtype '
            f'{stored.dtype}, shape {stored.shape})')
    return stored


#: ``<case>_<z>``: z has at least 4 digits, the case id is everything before
#: the last ``_``.
SLICE_NAME_RE = re.compile(r'(?P<case>.+)_(?P<z>\d{4,})')


def slice_name(case: str, z: int) -> str:
    """The stored name (no suffix) of axial slice ``z`` of ``case``."""
    return f'{case}_{int(z):04d}'


def parse_slice_name(name: str) -> Tuple[str, int]:
    """``(case, z)`` of a slice name or path (``.../img0001_0007.npy`` ->
    ``('img0001', 7)``); ``ValueError`` naming it if it is not one."""
    stem = osp.basename(name)
    for suffix in IMG_FORMATS.values():
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    m = SLICE_NAME_RE.fullmatch(stem)
    if m is None:
        raise ValueError(f'{name!r} is not a CT slice name <case>_<z:04d>')
    return m.group('case'), int(m.group('z'))


def to_canonical(data: np.ndarray, affine: np.ndarray
                 ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reorient a 3D array to the closest canonical (RAS+) frame.

    Returns ``(canonical array, canonical affine, ornt)``; equals nibabel's
    ``as_closest_canonical`` (array and affine) without building an image,
    and ``ornt`` is what :func:`from_canonical` needs to go back.
    """
    ornt = io_orientation(affine)
    canonical = apply_orientation(data, ornt)
    return canonical, affine.dot(inv_ornt_aff(ornt, data.shape)), ornt


def from_canonical(canonical: np.ndarray, ornt: np.ndarray) -> np.ndarray:
    """Inverse of :func:`to_canonical`: the array in its original axes."""
    back = ornt_transform(axcodes2ornt(('R', 'A', 'S')), ornt)
    return np.ascontiguousarray(apply_orientation(canonical, back))
