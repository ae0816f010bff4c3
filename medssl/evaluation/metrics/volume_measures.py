"""Per-volume segmentation measures (pure functions): slice names, Dice from
voxel counts, MONAI-compatible HD95 and the per-case / per-organ means.

The conventions (empty organs, the HD95 penalty, the averaging order) are
stated once, in :mod:`medssl.evaluation.metrics.volume_dice`.
"""
import os.path as osp
from typing import Sequence, Tuple

import numpy as np

__all__ = ['slice_case_and_index', 'dice_from_counts', 'surface_mask',
           'hd95_mm', 'volume_diagonal_mm', 'mean_per_case', 'mean_per_organ']


def slice_case_and_index(path: str):
    """``.../img0001_0042.npy`` (or ``.png``) -> ``('img0001', 42)``."""
    stem = osp.splitext(osp.basename(path))[0]
    case, _, z = stem.rpartition('_')
    if not case:
        raise ValueError(f'slice name {stem!r} is not <case>_<z>')
    return case, int(z)


def dice_from_counts(inter: np.ndarray, pred: np.ndarray,
                     gt: np.ndarray) -> np.ndarray:
    """Dice per class with the empty conventions above (NaN if both empty)."""
    inter, pred, gt = (np.asarray(a, dtype=np.float64) for a in (inter, pred,
                                                                 gt))
    denom = pred + gt
    with np.errstate(invalid='ignore', divide='ignore'):
        dice = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), np.nan)
    return dice


def surface_mask(mask: np.ndarray) -> np.ndarray:
    """Surface voxels as MONAI's ``get_mask_edges``: ``mask XOR
    binary_erosion(mask)`` with scipy's default structuring element (the
    cross: face neighbours only), outside the array = background."""
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask ^ ndimage.binary_erosion(mask, structure=cross,
                                         border_value=0)


def hd95_mm(pred: np.ndarray, gt: np.ndarray,
            spacing: Sequence[float]) -> float:
    """95 % Hausdorff distance (mm) between two boolean masks, as MONAI's
    ``compute_hausdorff_distance(percentile=95)`` with ``spacing``; NaN if
    either mask is empty (as MONAI; the metric applies its penalty).

    The masks are cropped to the bounding box of their union plus one voxel
    (as MONAI; exact: every surface voxel lies inside the box).
    """
    from scipy import ndimage
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape or len(spacing) != pred.ndim:
        raise ValueError(f'hd95_mm: shapes {pred.shape} / {gt.shape} and '
                         f'spacing {list(spacing)} do not match')
    if not pred.any() or not gt.any():
        return float('nan')
    nz = np.nonzero(pred | gt)
    box = tuple(
        slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in nz)
    sp, sg = surface_mask(pred[box]), surface_mask(gt[box])
    d_pg = ndimage.distance_transform_edt(~sg, sampling=spacing)[sp]
    d_gp = ndimage.distance_transform_edt(~sp, sampling=spacing)[sg]
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))


def volume_diagonal_mm(shape: Sequence[int],
                       spacing: Sequence[float]) -> float:
    """Physical diagonal of a volume: the HD95 penalty of a missed or
    false-positive organ."""
    return float(np.sqrt(sum((n * s)**2 for n, s in zip(shape, spacing))))


def mean_per_case(values: np.ndarray) -> Tuple[np.ndarray, float]:
    """(cases, organs) with NaN = excluded -> per-case means and their mean
    (NaN where nothing is defined)."""
    with np.errstate(invalid='ignore'):
        case_mean = np.array([
            np.nanmean(row) if np.isfinite(row).any() else np.nan
            for row in values
        ])
    mean = float(np.nanmean(case_mean)) if np.isfinite(
        case_mean).any() else float('nan')
    return case_mean, mean


def mean_per_organ(values: np.ndarray) -> np.ndarray:
    """(cases, organs) with NaN = excluded -> per-organ means over the cases
    where the organ is not excluded."""
    return np.array([
        np.nanmean(col) if np.isfinite(col).any() else np.nan
        for col in values.T
    ])
