import cv2
import numpy as np
import pytest

from medssl.registry import TRANSFORMS


def _write(path, arr):
    if path.endswith('.npy'):
        np.save(path, arr)
    else:
        assert cv2.imwrite(path, arr)


@pytest.mark.parametrize('suffix', ['.npy', '.png'])
def test_load_ct_slice(tmp_path, suffix):
    stored = np.array([[0, 1024, 1064], [2024, 4096, 65535]], np.uint16)
    path = str(tmp_path / f'a_0000{suffix}')
    _write(path, stored)
    t = TRANSFORMS.build(dict(type='LoadCTSlice'))
    out = t(dict(img_path=path))
    assert out['img'].dtype == np.float32 and out['img'].shape == (2, 3, 1)
    assert out['img'][..., 0].tolist() == [[-1024, 0, 40],
                                           [1000, 3072, 64511]]
    assert out['img_shape'] == (2, 3) and out['ori_shape'] == (2, 3)


def test_load_ct_slice_errors(tmp_path):
    t = TRANSFORMS.build(dict(type='LoadCTSlice'))
    p8 = str(tmp_path / 'eight.png')
    cv2.imwrite(p8, np.zeros((4, 4), np.uint8))
    with pytest.raises(TypeError, match='eight.png.*uint16'):
        t(dict(img_path=p8))
    with pytest.raises(OSError, match='missing.png'):
        t(dict(img_path=str(tmp_path / 'missing.png')))
    bad = tmp_path / 'bad.png'
    bad.write_bytes(b'not a png')
    with pytest.raises(OSError, match='bad.png'):
        t(dict(img_path=str(bad)))


def test_load_ct_slice_npy_errors(tmp_path):
    t = TRANSFORMS.build(dict(type='LoadCTSlice'))
    f32 = str(tmp_path / 'hu_float_0000.npy')
    np.save(f32, np.zeros((4, 4), np.float32))
    with pytest.raises(TypeError,
                       match=r'hu_float_0000\.npy.*uint16.*float32'):
        t(dict(img_path=f32))
    rgb = str(tmp_path / 'three_d_0000.npy')
    np.save(rgb, np.zeros((4, 4, 3), np.uint16))
    with pytest.raises(TypeError, match=r'three_d_0000\.npy.*\(4, 4, 3\)'):
        t(dict(img_path=rgb))
    with pytest.raises(OSError, match=r'missing_0000\.npy.*missing'):
        t(dict(img_path=str(tmp_path / 'missing_0000.npy')))
    trunc = tmp_path / 'trunc_0000.npy'
    np.save(str(trunc), np.zeros((64, 64), np.uint16))
    trunc.write_bytes(trunc.read_bytes()[:300])
    with pytest.raises(OSError, match=r'trunc_0000\.npy.*unreadable'):
        t(dict(img_path=str(trunc)))
    junk = tmp_path / 'junk_0000.npy'
    junk.write_bytes(b'not an npy file')
    with pytest.raises(OSError, match=r'junk_0000\.npy'):
        t(dict(img_path=str(junk)))
    obj = str(tmp_path / 'pickled_0000.npy')
    np.save(obj, np.array([{'a': 1}], dtype=object), allow_pickle=True)
    with pytest.raises(OSError, match=r'pickled_0000\.npy'):
        t(dict(img_path=obj))
