"""VolumeDiceMetric against hand-computed 3D Dice."""
import json

import numpy as np
import pytest
import torch

from medssl.evaluation import VolumeDiceMetric
from medssl.evaluation.metrics.volume_measures import hd95_mm


def sample(path, pred, gt):
    return dict(img_path=path,
                pred_sem_seg=dict(data=torch.as_tensor(pred)[None]),
                gt_sem_seg=dict(data=torch.as_tensor(gt)[None]))


def two_cases():
    """Classes: 0 bg, 1 spleen, 2 liver, 3 aorta. 4x4 slices.

    case A (3 slices), case B (2 slices, the B slices named with an
    underscore inside the case id to test rsplit).
    """
    z = np.zeros((4, 4), np.uint8)
    A_gt, A_pred, B_gt, B_pred = [], [], [], []
    # case A: spleen GT 4 px on slice0 + 4 px on slice1; pred hits 6 of them
    # plus 2 false px -> I=6, P=8, G=8 -> 0.75
    # liver GT 2 px on slice2, pred 0 -> Dice 0
    # aorta absent in GT and pred -> NaN
    g0, p0 = z.copy(), z.copy()
    g0[0, :4] = 1
    p0[0, :3] = 1
    p0[3, 3] = 1
    g1, p1 = z.copy(), z.copy()
    g1[1, :4] = 1
    p1[1, :3] = 1
    p1[3, 0] = 1
    g2, p2 = z.copy(), z.copy()
    g2[2, :2] = 2
    A_gt += [g0, g1, g2]
    A_pred += [p0, p1, p2]
    # case B: spleen absent in GT but predicted (3 px) -> 0
    # liver GT 6 px over 2 slices, pred 4 of them + 0 extra -> I=4,P=4,G=6
    # -> 0.8 ; aorta GT 1 px with one 255 ignore px, pred correct -> 1.0
    h0, q0 = z.copy(), z.copy()
    h0[0, :3] = 2
    q0[0, :2] = 2
    q0[3, :3] = 1
    h1, q1 = z.copy(), z.copy()
    h1[1, :3] = 2
    q1[1, :2] = 2
    h1[2, 2] = 3
    q1[2, 2] = 3
    h1[2, 3] = 255
    q1[2, 3] = 3  # predicted on an ignored pixel: must not count
    B_gt += [h0, h1]
    B_pred += [q0, q1]
    samples = [sample(f'/d/img_dir/caseA_{i:04d}.png', p, g)
               for i, (p, g) in enumerate(zip(A_pred, A_gt))]
    samples += [sample(f'/d/img_dir/case_B_{i + 7:04d}.png', p, g)
                for i, (p, g) in enumerate(zip(B_pred, B_gt))]
    return samples


def test_volume_dice_hand_computed(tmp_path):
    metric = VolumeDiceMetric(out_file=str(tmp_path / 'dice.json'))
    metric.dataset_meta = dict(
        classes=('background', 'spleen', 'liver', 'aorta'))
    samples = two_cases()
    # slices arrive interleaved and in two batches, as from several ranks
    metric.process({}, samples[3:] + samples[:1])
    metric.process({}, samples[1:3])
    res = metric.evaluate(len(samples))
    # per case: A = mean(0.75, 0) = 0.375 ; B = mean(0, 0.8, 1.0) = 0.6
    assert res['mDice'] == pytest.approx(100 * (0.375 + 0.6) / 2, abs=0.01)
    assert res['Dice.spleen'] == pytest.approx(100 * (0.75 + 0) / 2, abs=0.01)
    assert res['Dice.liver'] == pytest.approx(100 * (0 + 0.8) / 2, abs=0.01)
    assert res['Dice.aorta'] == pytest.approx(100.0, abs=0.01)  # A is NaN
    assert 'mDice_organ' not in res  # one averaging order (per volume)
    # A: liver in GT, not predicted; B: spleen predicted, not in GT
    assert res['missed_organs'] == 1 and res['false_positive_organs'] == 1
    assert res['num_cases'] == 2
    out = json.loads((tmp_path / 'dice.json').read_text())
    assert set(out['per_case']) == {'caseA', 'case_B'}
    assert out['per_case']['caseA']['dice']['aorta'] is None
    assert out['per_case']['case_B']['dice']['spleen'] == 0
    assert out['per_case']['caseA']['dice']['spleen'] == pytest.approx(75)
    assert out['per_case']['caseA']['missed'] == ['liver']
    assert out['per_case']['case_B']['false_positive'] == ['spleen']


def test_typo_in_arguments_raises():
    with pytest.raises(TypeError, match='hd_95'):
        VolumeDiceMetric(num_classes=2, hd_95=True)


def test_volume_dice_is_not_slice_average():
    """Slice-averaged Dice would differ; 3D Dice pools voxels."""
    metric = VolumeDiceMetric(num_classes=2)
    z = np.zeros((2, 2), np.uint8)
    g0, p0 = z.copy(), z.copy()
    g0[:] = 1
    p0[:] = 1  # 4/4 perfect
    g1, p1 = z.copy(), z.copy()
    g1[0, 0] = 1  # missed: slice Dice 0
    metric.process({}, [sample('c_0000.png', p0, g0),
                        sample('c_0001.png', p1, g1)])
    res = metric.evaluate(2)
    assert res['mDice'] == pytest.approx(100 * 2 * 4 / (4 + 5), abs=0.01)


def test_duplicate_slices_raise():
    metric = VolumeDiceMetric(num_classes=2)
    z = np.zeros((2, 2), np.uint8)
    metric.process({}, [sample('c_0000.png', z, z),
                        sample('c_0000.png', z, z)])
    with pytest.raises(ValueError, match='duplicate'):
        metric.evaluate(2)


def test_hd95_known_geometry(tmp_path):
    # two cubes shifted by 2 voxels along z (spacing 3 mm) -> HD95 = 6 mm
    gt = np.zeros((10, 10, 10), bool)
    gt[2:6, 2:6, 2:6] = True
    pred = np.roll(gt, 2, axis=2)
    assert hd95_mm(pred, gt, [1, 1, 3]) == pytest.approx(6.0)
    assert np.isnan(hd95_mm(pred, np.zeros_like(gt), [1, 1, 1]))

    # through the metric, reading spacing from meta/<case>.json
    (tmp_path / 'meta').mkdir()
    # spacing canonical [sx, sy, sz]; slice is (Y, X)
    (tmp_path / 'meta' / 'cube.json').write_text(
        json.dumps(dict(case='cube', spacing=[1.0, 1.0, 3.0])))
    metric = VolumeDiceMetric(num_classes=2, hd95=True)
    samples = [sample(str(tmp_path / 'img_dir' / f'cube_{z:04d}.npy'),
                      pred[..., z].astype(np.uint8),
                      gt[..., z].astype(np.uint8)) for z in range(10)]
    metric.process({}, samples)
    res = metric.evaluate(10)
    assert res['mHD95'] == pytest.approx(6.0)
    assert res['mDice'] == pytest.approx(50.0)
