"""HD95 = MONAI's compute_hausdorff_distance(percentile=95), checked against
an independent brute-force reference; missed organs and averaging."""
import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from medssl.evaluation import VolumeDiceMetric
from medssl.evaluation.metrics.volume_measures import (hd95_mm, surface_mask,
                                                       volume_diagonal_mm)


def reference_hd95(a, b, spacing):
    """MONAI semantics written independently: a surface voxel is a mask
    voxel with at least one of its 6 face neighbours outside the mask (or
    outside the array); distances are brute-force point-to-point in mm;
    HD95 = max of the two directed 95th percentiles (linear, as
    torch.quantile)."""

    def surface_points(m):
        pad = np.pad(m, 1)
        inner = np.ones_like(m)
        for ax in range(3):
            for step in (-1, 1):
                inner &= np.roll(pad, step, axis=ax)[1:-1, 1:-1, 1:-1]
        return np.argwhere(m & ~inner) * np.asarray(spacing, float)

    pa, pb = surface_points(a), surface_points(b)
    d = np.sqrt(((pa[:, None, :] - pb[None, :, :])**2).sum(-1))
    return max(np.quantile(d.min(1), 0.95), np.quantile(d.min(0), 0.95))


def blob(rng, shape, thr):
    """Irregular 3D shape: thresholded smoothed noise."""
    f = ndimage.gaussian_filter(rng.standard_normal(shape), 1.5)
    return f > thr


@pytest.mark.parametrize('seed', range(6))
def test_hd95_equals_reference_on_anisotropic_irregular_masks(seed):
    rng = np.random.default_rng(seed)
    shape = (28, 24, 12)
    spacing = [(0.8, 0.7, 2.5), (1.5, 0.6, 3.0), (0.7, 0.7, 5.0)][seed % 3]
    gt = blob(rng, shape, 0.05)
    pred = gt.copy()
    # an imperfect prediction: dilated in places, eroded elsewhere
    noise = blob(rng, shape, 0.1)
    pred = np.where(noise, ndimage.binary_dilation(gt), ndimage.binary_erosion(
        gt)) if seed % 2 else (gt ^ (noise & blob(rng, shape, 0.2)))
    assert gt.any() and pred.any() and (gt != pred).any()
    ours = hd95_mm(pred, gt, spacing)
    assert ours == pytest.approx(reference_hd95(pred, gt, spacing), abs=0.01)
    assert hd95_mm(gt, pred, spacing) == pytest.approx(ours)  # symmetric


def test_surface_is_the_6_neighbour_rule_with_background_outside():
    """``surface_mask`` on a hand-drawn mask. A 5x5 square with its 2x2
    corner cut off, 3 slices thick. The two outer slices are surface (z
    neighbour outside the array = background). In the middle slice a pixel
    is interior when its 4 in-plane neighbours are in the mask: 6 pixels,
    among them the concave corner (3, 3) whose *diagonal* neighbour (2, 4)
    is outside -- interior for the 6-neighbour cross, surface for a full
    3x3x3 block."""
    plane = np.zeros((7, 7), bool)
    plane[1:6, 1:6] = True
    plane[1:3, 4:6] = False
    mask = np.repeat(plane[..., None], 3, axis=2)
    interior = np.zeros((7, 7), bool)
    for r, c in [(2, 2), (3, 2), (3, 3), (4, 2), (4, 3), (4, 4)]:
        interior[r, c] = True
    expected = mask.copy()
    expected[..., 1] &= ~interior
    surf = surface_mask(mask)
    np.testing.assert_array_equal(surf, expected)
    assert surf.sum() == 3 * 21 - 6
    # a mask filling the whole array: every voxel but the centre touches
    # the outside, which is background
    full = surface_mask(np.ones((3, 3, 3), bool))
    assert full.sum() == 26 and not full[1, 1, 1]


def test_hd95_mask_touching_the_array_border():
    """GT fills the whole 6x3x3 array, the prediction its first half.
    Outside the array is background, so the GT surface is its shell (50
    voxels) and the prediction's is all of it but the centre (26 voxels,
    the whole face i = 2 among them). GT -> prediction: 25 shell voxels at
    i <= 2 lie on the prediction's surface (0), rings at i = 3, 4 are 1 and
    2 voxels from face i = 2 (8 each), face i = 5 is 3 voxels away (9):
    the 95th percentile (position 0.95 * 49 = 46.55 of 50 sorted values)
    is 3 voxels = 3 * 2.0 mm. Prediction -> GT: 25 zeros and one voxel
    (2, 1, 1) off the GT surface: 0. HD95 = 6 mm."""
    gt = np.ones((6, 3, 3), bool)
    pred = np.zeros_like(gt)
    pred[:3] = True
    assert hd95_mm(pred, gt, (2.0, 0.7, 0.9)) == pytest.approx(6.0)
    assert hd95_mm(gt, pred, (2.0, 0.7, 0.9)) == pytest.approx(6.0)


def test_hd95_cube_shift_and_empty():
    # two cubes shifted by 2 voxels along z (spacing 3 mm) -> HD95 = 6 mm
    gt = np.zeros((10, 10, 10), bool)
    gt[2:6, 2:6, 2:6] = True
    pred = np.roll(gt, 2, axis=2)
    assert hd95_mm(pred, gt, [1, 1, 3]) == pytest.approx(6.0)
    assert np.isnan(hd95_mm(pred, np.zeros_like(gt), [1, 1, 1]))
    assert volume_diagonal_mm((3, 4, 2), (1., 1., 6.)) == pytest.approx(13.)


def _sample(path, pred, gt):
    return dict(img_path=path,
                pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def test_missed_organ_raises_mhd95_and_is_counted(tmp_path):
    """Case 'a': organ 1 shifted by 2 slices (HD95 = 2 * 3 mm = 6 mm),
    organ 2 in GT but missed -> penalty = diagonal; organ 3 absent in both
    -> excluded. Case 'b': organ 1 perfect (0 mm), organ 3 predicted but
    absent in GT -> penalty, counted as false positive."""
    (tmp_path / 'meta').mkdir()
    for c in 'ab':
        (tmp_path / 'meta' / f'{c}.json').write_text(
            json.dumps(dict(case=c, spacing=[1.0, 1.0, 3.0])))
    shape = (10, 10, 10)  # (Y, X, Z) -> diagonal sqrt(100 + 100 + 900)
    diag = math.sqrt(10**2 + 10**2 + 30**2)
    ga = np.zeros(shape, np.uint8)
    ga[2:6, 2:6, 2:6] = 1
    pa = np.roll(ga, 2, axis=2)
    ga[7:9, 7:9, 1:3] = 2  # organ 2: GT only
    gb = np.zeros(shape, np.uint8)
    gb[1:5, 1:5, 3:7] = 1
    pb = gb.copy()
    pb[7:9, 7:9, 7:9] = 3  # organ 3: prediction only

    def run(hd95):
        metric = VolumeDiceMetric(num_classes=4, hd95=hd95,
                                  out_file=str(tmp_path / 'm.json'))
        metric.process({}, [
            _sample(str(tmp_path / 'img_dir' / f'{c}_{z:04d}.npy'),
                    p[..., z], g[..., z])
            for c, p, g in (('a', pa, ga), ('b', pb, gb))
            for z in range(shape[2])])
        return metric.evaluate(2 * shape[2])

    res = run(True)
    # per volume first: a = mean(6, diag); b = mean(0, diag)
    assert res['mHD95'] == pytest.approx(
        ((6 + diag) / 2 + (0 + diag) / 2) / 2, abs=0.01)
    assert res['HD95.class1'] == pytest.approx(3.0)
    assert res['HD95.class2'] == pytest.approx(diag, abs=0.01)
    assert res['missed_organs'] == 1 and res['false_positive_organs'] == 1
    # Dice uses the same cells and order: a = mean(0.5, 0), b = mean(1, 0)
    assert res['mDice'] == pytest.approx(100 * (0.25 + 0.5) / 2, abs=0.01)
    out = json.loads((tmp_path / 'm.json').read_text())
    assert out['per_case']['a']['missed'] == ['class2']
    assert out['per_case']['a']['hd95_mm']['class3'] is None  # excluded
    assert out['per_case']['b']['false_positive'] == ['class3']
    # without the penalty the missed organ would vanish: mHD95 over found
    # organs only would be (6 + 0) / 2 = 3 mm
    assert res['mHD95'] > 3.0
    # the counts do not need HD95
    res = run(False)
    assert 'mHD95' not in res and res['missed_organs'] == 1


def _one_case_metric(tmp_path, spacing, pred, gt, num_classes):
    """Run the metric on one (Y, X, Z) case named 'c' with
    ``meta/c.json`` holding the canonical ``spacing`` [sx, sy, sz]."""
    (tmp_path / 'meta').mkdir(exist_ok=True)
    (tmp_path / 'meta' / 'c.json').write_text(
        json.dumps(dict(case='c', spacing=list(spacing))))
    metric = VolumeDiceMetric(num_classes=num_classes, hd95=True)
    metric.process({}, [
        _sample(str(tmp_path / 'img_dir' / f'c_{z:04d}.npy'), pred[..., z],
                gt[..., z]) for z in range(gt.shape[2])])
    return metric.evaluate(gt.shape[2])


def test_hd95_in_plane_spacing_order(tmp_path):
    """meta spacing is canonical [sx, sy, sz] = [0.6, 1.7, 2.0]; a slice is
    (Y = rows, X = columns). Each organ is a segment of 4 voxels along z;
    every predicted voxel lies straight across from its GT voxel, so all
    surface distances, and HD95, equal the shift: organ 1 moved 2 columns
    -> 2 * sx = 1.2 mm, organ 2 moved 1 row -> 1 * sy = 1.7 mm. Organ 3 is
    missed -> the diagonal of the 8 x 12 x 5 volume, sqrt((8 sy)^2 +
    (12 sx)^2 + (5 sz)^2). With sx and sy swapped: 3.4, 0.6 and another
    diagonal."""
    sx, sy, sz = 0.6, 1.7, 2.0
    gt = np.zeros((8, 12, 5), np.uint8)
    pred = np.zeros_like(gt)
    gt[2, 3, 0:4] = 1
    pred[2, 5, 0:4] = 1
    gt[5, 8, 1:5] = 2
    pred[6, 8, 1:5] = 2
    gt[0, 0, 2] = 3
    res = _one_case_metric(tmp_path, [sx, sy, sz], pred, gt, 4)
    diag = math.sqrt((8 * sy)**2 + (12 * sx)**2 + (5 * sz)**2)
    assert res['HD95.class1'] == pytest.approx(1.2)
    assert res['HD95.class2'] == pytest.approx(1.7)
    assert res['HD95.class3'] == pytest.approx(diag, abs=0.01)
    assert res['mHD95'] == pytest.approx((1.2 + 1.7 + diag) / 3, abs=0.01)


def test_hd95_ignores_voxels_labelled_255(tmp_path):
    """Organ 1 is predicted exactly (4 voxels along z) and also on 4 voxels
    whose GT is ignore_index 255, 3 columns away. Those must not count:
    HD95 = 0 mm (were they kept, half the predicted surface would be 3 * sx
    = 1.8 mm from the GT and HD95 = 1.8 mm). Dice ignores them too."""
    gt = np.zeros((6, 8, 4), np.uint8)
    gt[2, 2, :] = 1
    gt[2, 5, :] = 255
    pred = np.zeros_like(gt)
    pred[2, 2, :] = 1
    pred[2, 5, :] = 1
    res = _one_case_metric(tmp_path, [0.6, 1.7, 2.0], pred, gt, 2)
    assert res['HD95.class1'] == 0.0 and res['mHD95'] == 0.0
    assert res['mDice'] == pytest.approx(100.0)
    assert res['false_positive_organs'] == 0
