"""The two conventions every converter, dataset and inference tool shares.

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
"""
import os.path as osp
from typing import Sequence

import numpy as np

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
    ``TypeError`` naming the file if it is not a 2D uint16 array.
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
    if stored.dtype != np.uint16 or stored.ndim != 2:
        raise TypeError(
            f'{path} is not a single-channel uint16 CT slice (dtype '
            f'{stored.dtype}, shape {stored.shape})')
    return stored
