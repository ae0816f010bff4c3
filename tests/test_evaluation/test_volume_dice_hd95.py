"""HD95 = MONAI's compute_hausdorff_distance(percentile=95), checked against
an independent brute-force reference; missed organs and averaging."""
import json
import math

import numpy as np
import pytest
import torch
from scipy import ndimage

from medssl.evaluation import VolumeDiceMetric
from medssl.evaluation.metrics.volume_dice import hd95_mm, volume_diagonal_mm


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


def test_full_block_erosion_would_fail_the_reference():
    """The reference can tell the 6-neighbour surface from the old 3x3x3
    one (which reported 0 mm for imperfect irregular predictions)."""
    rng = np.random.default_rng(3)
    spacing = (0.8, 0.7, 2.5)
    differs = 0
    for _ in range(3):
        gt = blob(rng, (28, 24, 12), 0.05)
        pred = np.where(blob(rng, gt.shape, 0.1), ndimage.binary_dilation(gt),
                        ndimage.binary_erosion(gt))

        def thick(m):
            return m & ~ndimage.binary_erosion(m, np.ones((3, 3, 3)))

        sp, sg = thick(pred), thick(gt)
        old = max(
            np.percentile(
                ndimage.distance_transform_edt(~sg, sampling=spacing)[sp],
                95),
            np.percentile(
                ndimage.distance_transform_edt(~sp, sampling=spacing)[sg],
                95))
        differs += abs(old - reference_hd95(pred, gt, spacing)) > 0.05
    assert differs >= 2


def test_hd95_cube_shift_and_empty():
    # two cubes shifted by 2 voxels along z (spacing 3 mm) -> HD95 = 6 mm
    gt = np.zeros((10, 10, 10), bool)
    gt[2:6, 2:6, 2:6] = True
    pred = np.roll(gt, 2, axis=2)
    assert hd95_mm(pred, gt, [1, 1, 3]) == pytest.approx(6.0)
    assert np.isnan(hd95_mm(pred, np.zeros_like(gt), [1, 1, 1]))
    # a mask touching the border: outside counts as background (MONAI pads)
    edge = np.zeros((6, 6, 6), bool)
    edge[:3] = True
    assert hd95_mm(edge, edge, [1, 1, 1]) == 0.0
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
