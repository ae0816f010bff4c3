"""medssl.apis.volume_io geometry helpers."""
import itertools

import nibabel as nib
import numpy as np
import pytest

from medssl.apis.volume_io import (canonical_to_original, save_labels,
                                   volume_to_canonical)
from medssl.datasets.converters import ct_io

AXES = [('R', 'L'), ('A', 'P'), ('S', 'I')]


def orientations():
    for perm in itertools.permutations(range(3)):
        for flips in itertools.product((0, 1), repeat=3):
            yield tuple(AXES[p][f] for p, f in zip(perm, flips))


def image_with_axcodes(codes, shape=(5, 6, 7)):
    """A volume whose array axes run along ``codes`` (e.g. L, S, P)."""
    ornt = nib.orientations.axcodes2ornt(codes)
    aff = nib.orientations.inv_ornt_aff(ornt, shape)  # array -> RAS-ish
    aff = np.linalg.inv(aff) @ np.diag([0.8, 0.9, 2.5, 1.0])
    aff[:3, 3] = [10, -20, 30]
    data = np.random.default_rng(0).normal(size=shape).astype(np.float32)
    return nib.Nifti1Image(data, aff)


@pytest.mark.parametrize('codes', list(orientations()))
def test_roundtrip_all_orientations(codes):
    img = image_with_axcodes(codes, shape=(5, 6, 7))
    assert nib.aff2axcodes(img.affine) == codes
    canonical, ornt = volume_to_canonical(img)
    # same array as nibabel's own canonical image
    ref = nib.as_closest_canonical(img)
    np.testing.assert_array_equal(canonical, ref.get_fdata(dtype=np.float32))
    # slices -> canonical -> original is the identity
    slices = [ct_io.canonical_to_slice(canonical, z)
              for z in range(canonical.shape[2])]
    back = canonical_to_original(ct_io.slices_to_canonical(slices), ornt)
    np.testing.assert_array_equal(back, img.get_fdata(dtype=np.float32))


def test_save_labels_keeps_geometry(tmp_path):
    img = image_with_axcodes(('L', 'S', 'P'))
    img.header.set_data_dtype(np.int16)
    img.header.set_slope_inter(0.5, -1024)
    labels = (np.arange(img.get_fdata().size) % 14).reshape(
        img.shape).astype(np.uint8)
    save_labels(labels, img, str(tmp_path / 'l.nii.gz'))
    out = nib.load(str(tmp_path / 'l.nii.gz'))
    np.testing.assert_allclose(out.affine, img.affine)
    assert out.get_data_dtype() == np.uint8
    np.testing.assert_array_equal(np.asarray(out.dataobj), labels)
    assert out.header.get_slope_inter() in ((None, None), (1.0, 0.0))
