"""The rules ct_io owns: slice names, reorientation, all-slices reorder, and
the converters' label PNG encoder."""
import itertools

import cv2
import nibabel as nib
import numpy as np
import pytest

from medssl.datasets.converters import ct_io
from medssl.datasets.converters.files import encode_label_png


def test_slice_name_round_trip_and_errors():
    assert ct_io.slice_name('img0001', 7) == 'img0001_0007'
    assert ct_io.slice_name('Case_00001', 12345) == 'Case_00001_12345'
    # the case id may contain '_'; a path and a suffix are accepted
    assert ct_io.parse_slice_name('/d/img_dir/Case_00001_0042.npy') == (
        'Case_00001', 42)
    assert ct_io.parse_slice_name('img0001_0007.png') == ('img0001', 7)
    for bad in ('img0001', 'img0001_7', 'img0001_00a7', '_0001x'):
        with pytest.raises(ValueError, match=bad):
            ct_io.parse_slice_name(bad)


@pytest.mark.parametrize('perm', list(itertools.permutations(range(3))))
def test_to_canonical_equals_nibabel_and_inverts(perm):
    rng = np.random.default_rng(sum(perm))
    affine = np.eye(4)
    for i, p in enumerate(perm):
        affine[p, i] = (-1) ** (i + p) * (i + 1.5)  # flips and zooms
    affine[:3, 3] = rng.normal(0, 50, 3)
    data = rng.normal(size=(4, 5, 6)).astype(np.float32)
    ref = nib.as_closest_canonical(nib.Nifti1Image(data, affine))
    canonical, canonical_affine, ornt = ct_io.to_canonical(data, affine)
    np.testing.assert_array_equal(canonical, np.asanyarray(ref.dataobj))
    np.testing.assert_allclose(canonical_affine, ref.affine)
    np.testing.assert_array_equal(ct_io.from_canonical(canonical, ornt),
                                  data)


def test_canonical_to_slices_is_every_slice():
    vol = np.arange(3 * 4 * 5, dtype=np.int16).reshape(3, 4, 5)
    stack = ct_io.canonical_to_slices(vol)
    assert stack.shape == (5, 4, 3) and stack.flags.c_contiguous
    for z in range(5):
        np.testing.assert_array_equal(stack[z],
                                      ct_io.canonical_to_slice(vol, z))


def test_label_png_decodes_exactly_and_is_deterministic():
    rng = np.random.default_rng(0)
    lab = np.zeros((37, 53), np.uint8)
    lab[5:20, 10:40] = 3
    lab[25:, :7] = rng.integers(0, 14, (12, 7))
    png = encode_label_png(lab)
    assert png == encode_label_png(lab.copy())
    out = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint8
    np.testing.assert_array_equal(out, lab)
    with pytest.raises(Exception, match='2D uint8'):
        encode_label_png(lab.astype(np.uint16))
