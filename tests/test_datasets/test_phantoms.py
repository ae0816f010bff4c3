import os.path as osp

import nibabel as nib
import numpy as np
import pytest

from medssl.datasets.phantom_writer import write_phantom_dataset
from medssl.datasets.phantoms import BTCV_LABELS, make_phantom_case


def test_deterministic_by_seed():
    a = make_phantom_case(3, 'btcv', index=2)
    b = make_phantom_case(3, 'btcv', index=2)
    c = make_phantom_case(4, 'btcv', index=2)
    assert np.array_equal(a['data'], b['data'])
    assert np.array_equal(a['label'], b['label'])
    assert np.array_equal(a['affine'], b['affine'])
    assert a['data'].shape != c['data'].shape or \
        not np.array_equal(a['data'], c['data'])


def test_btcv_phantom_content():
    """The nominal case (every latent factor at its mean, portal venous)."""
    case = make_phantom_case(0, 'btcv', shape=(64, 64, 12), vary=False)
    hu, label = case['hu'], case['label']
    assert case['data'].dtype == np.int16
    # all 13 organs present with the real ids
    assert set(np.unique(label).tolist()) == set(range(len(BTCV_LABELS)))
    X, Y, Z = hu.shape
    # air outside the body; fat (subcutaneous, visceral) is a good part of
    # the body; bone (spine, ribs) > 400 HU
    assert abs(np.median(hu[0, 0, :]) + 1000) < 20
    body = hu > -500
    assert .1 < ((hu > -150) & (hu < -50)).sum() / body.sum() < .6
    assert hu.max() > 400
    # liver (6) on the patient's right = high canonical x; spleen (1) left
    xs = np.nonzero(label == 6)[0].mean(), np.nonzero(label == 1)[0].mean()
    assert xs[0] > X / 2 > xs[1]
    # right kidney (2) on the right, left kidney (3) on the left, both
    # posterior (low canonical y); aorta (8) left of the IVC (9)
    assert np.nonzero(label == 2)[0].mean() > X / 2 > \
        np.nonzero(label == 3)[0].mean()
    assert np.nonzero(label == 2)[1].mean() < Y / 2
    assert np.nonzero(label == 8)[0].mean() < np.nonzero(label == 9)[0].mean()
    # the spine is posterior; the esophagus (5) only in superior slices,
    # above the kidneys
    assert np.nonzero(hu > 300)[1].mean() < Y / 2
    assert np.nonzero(label == 5)[2].min() > np.nonzero(label == 2)[2].mean()
    # portal venous HU: native + 0.4 * arterial + 0.9 * venous gain, lowered
    # by partial volume on this coarse grid (liver 108, aorta 208 nominal)
    assert 85 < np.median(hu[label == 6]) < 115
    assert 140 < np.median(hu[label == 8]) < 215
    # texture and noise: the liver is not flat
    assert np.std(hu[label == 6]) > 5


def test_contrast_phase_and_factor_overrides():
    med = {}
    for phase, a, p in (('native', 0., 0.), ('arterial', 1., .2)):
        c = make_phantom_case(0, 'btcv', vary=False, factors=dict(
            phase=phase, arterial=a, venous=p))
        assert c['factors']['phase'] == phase
        med[phase] = [np.median(c['hu'][c['label'] == i]) for i in (6, 8)]
    # the aorta (gain 280 + 0.2 * 60) enhances far more than the liver
    # (12 + 0.2 * 50); partial volume scales the aorta's shift down
    d_liver = med['arterial'][0] - med['native'][0]
    d_aorta = med['arterial'][1] - med['native'][1]
    assert 10 < d_liver < 35 and d_aorta > 150
    with pytest.raises(ValueError, match='nope'):
        make_phantom_case(0, 'btcv', factors=dict(nope=1))


def test_latent_factors_vary_and_overlap():
    cases = [make_phantom_case(0, 'abdomen1k', index=i) for i in range(12)]
    assert len({c['factors']['phase'] for c in cases}) >= 3
    for key in ('body_rx', 'organ_scale', 'noise_hu', 'blur_z', 'z_center'):
        assert len({round(c['factors'][key], 6) for c in cases}) == 12
    liver = [np.median(c['hu'][c['label'] == 1]) for c in cases]
    spleen = [np.median(c['hu'][c['label'] == 3]) for c in cases]
    frac = [(c['label'] == 1).mean() for c in cases]
    assert max(liver) - min(liver) > 30  # phase + case jitter
    # intensity alone does not identify the organ: the ranges overlap
    assert min(spleen) < max(liver) and min(liver) < max(spleen)
    assert np.std(frac) / np.mean(frac) > .1  # organ size / z-range vary
    # organs appear and disappear along z: a longer volume has slices
    # without kidneys and slices with them
    c = make_phantom_case(0, 'btcv', shape=(64, 64, 32), vary=False)
    per_slice = (c['label'] == 2).any((0, 1))
    assert per_slice.any() and not per_slice.all()


def test_variation_and_scaling():
    cases = [make_phantom_case(0, 'btcv', index=i) for i in range(8)]
    assert len({c['axcodes'] for c in cases}) >= 3
    assert any(c['axcodes'] != ('R', 'A', 'S') for c in cases)
    assert len({c['hu'].shape for c in cases}) >= 3
    assert {c['slope'] for c in cases} >= {1.0, 0.5}
    pads = {c['pad_hu'] for c in cases}
    assert pads & {-2048.0, -3024.0}
    for c in cases:
        if c['pad_hu'] is not None:
            assert c['hu'].min() == c['pad_hu']
    a1k = make_phantom_case(0, 'abdomen1k', index=0)
    assert set(np.unique(a1k['label']).tolist()) == {0, 1, 2, 3, 4}
    assert (a1k['hu'][:, :, -1] < -500).all()  # most superior slice is air


@pytest.mark.parametrize('dataset,files', [
    ('btcv', ['RawData/Training/img/img0001.nii.gz',
              'RawData/Training/label/label0001.nii.gz',
              'RawData/Training/img/img0002.nii.gz',
              'RawData/Training/label/label0002.nii.gz',
              'RawData/Training/img/img0003.nii.gz',
              'RawData/Training/label/label0003.nii.gz']),
    ('abdomen1k', ['AbdomenCT-1K-ImagePart1/Case_00001_0000.nii.gz',
                   'Mask/Case_00001.nii.gz',
                   'AbdomenCT-1K-ImagePart1/Case_00002_0000.nii.gz',
                   'Mask/Case_00002.nii.gz',
                   'AbdomenCT-1K-ImagePart2/Case_00003_0000.nii.gz',
                   'Mask/Case_00003.nii.gz']),
])
def test_write_layouts_and_readback(tmp_path, dataset, files):
    paths = write_phantom_dataset(str(tmp_path), dataset, num_cases=3, seed=0)
    assert [osp.relpath(p, tmp_path) for p in paths] == files
    for i in range(3):
        case = make_phantom_case(0, dataset, index=i)
        img = nib.load(paths[2 * i])
        assert img.get_data_dtype() == np.int16
        assert np.array_equal(img.dataobj.get_unscaled(), case['data'])
        canon = nib.as_closest_canonical(img)
        assert np.array_equal(canon.get_fdata(), case['hu'])
        assert np.allclose(canon.affine, case['canonical_affine'])
        assert nib.aff2axcodes(img.affine) == case['axcodes']
        label = nib.as_closest_canonical(nib.load(paths[2 * i + 1]))
        assert np.array_equal(np.asarray(label.dataobj), case['label'])


def test_broken_files(tmp_path):
    root = str(tmp_path)
    write_phantom_dataset(
        root, 'btcv', num_cases=3, broken=('truncated', 'shape_mismatch'))
    with pytest.raises(Exception):
        nib.load(osp.join(root, 'RawData/Training/img/img0003.nii.gz')
                 ).get_fdata()
    img = nib.load(osp.join(root, 'RawData/Training/img/img0002.nii.gz'))
    lbl = nib.load(osp.join(root, 'RawData/Training/label/label0002.nii.gz'))
    assert img.shape != lbl.shape
    with pytest.raises(ValueError):
        write_phantom_dataset(root, 'btcv', num_cases=1, broken=('nope', ))
