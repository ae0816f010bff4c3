"""The two conventions every converter, dataset and inference tool shares.

1. **Lossless HU storage.** A slice is stored as a 16-bit PNG holding
   ``round(HU) + HU_OFFSET`` (``HU_OFFSET = 1024``). HU below -1024 (scanner
   padding outside the field of view: -2048, -3024) is clipped to -1024 (air);
   everything up to 64511 HU is kept exactly. One conversion serves every HU
   window, because windowing happens in the data pipeline.

2. **Slice orientation.** Volumes are reoriented to the closest canonical (RAS+)
   frame first. Axial slice ``z`` of the canonical array ``vol[x, y, z]`` is
   stored as a 2D image with rows running anterior -> posterior and columns
   running patient-right -> patient-left (the radiological display used by CT
   viewers): ``img = vol[::-1, ::-1, z].T``. :func:`slices_to_canonical` is the
   exact inverse, used to write predictions back to 3D.
"""
from typing import Sequence

import numpy as np

HU_OFFSET = 1024
HU_MIN = -HU_OFFSET
HU_MAX = np.iinfo(np.uint16).max - HU_OFFSET


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
