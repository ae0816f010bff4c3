"""LoadCTSlice refuses 8-bit images (issue 16: uint8 pictures were taken
as HU 0-255), naming the file and the value range."""
import cv2
import numpy as np
import pytest

from medssl.registry import TRANSFORMS


@pytest.mark.parametrize('suffix,dtype', [('.png', np.uint8),
                                          ('.npy', np.uint8),
                                          ('.npy', np.int8)])
def test_8bit_slice_is_refused_naming_file_and_range(tmp_path, suffix,
                                                     dtype):
    arr = np.arange(16, dtype=np.int64).reshape(4, 4) * 8  # 0..120
    arr = arr.astype(dtype)
    path = str(tmp_path / f'screenshot_0003{suffix}')
    if suffix == '.png':
        assert cv2.imwrite(path, arr)
    else:
        np.save(path, arr)
    t = TRANSFORMS.build(dict(type='LoadCTSlice'))
    with pytest.raises(TypeError) as err:
        t(dict(img_path=path))
    assert str(err.value) == (
        f'LoadCTSlice: {path} is an 8-bit image ({np.dtype(dtype).name}, '
        'values 0..120), not a CT slice: slices hold HU as uint16 '
        '(HU + 1024); convert the CT volumes with tools/dataset_converters')


def test_uint16_slice_with_small_values_is_air_not_refused(tmp_path):
    # all <= 255 stored = HU <= -769: an all-air slice, legitimate data
    path = str(tmp_path / 'air_0000.npy')
    np.save(path, np.full((4, 4), 24, np.uint16))
    out = TRANSFORMS.build(dict(type='LoadCTSlice'))(dict(img_path=path))
    assert out['img'].min() == out['img'].max() == -1000.0
