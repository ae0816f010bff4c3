import numpy as np
import pytest

from medssl.registry import TRANSFORMS

HU = np.array([[-1024, -175, 37.5], [250, 1000, -2000]],
              np.float32)[..., None]


def test_hu_window_hand_computed():
    t = TRANSFORMS.build(dict(type='HUWindow'))
    out = t(dict(img=HU.copy()))['img']
    assert out.dtype == np.float32 and out.shape == (2, 3, 1)
    np.testing.assert_allclose(out[..., 0], [[0, 0, 0.5], [1, 1, 0]])
    t = TRANSFORMS.build(
        dict(type='HUWindow', windows=[(-175, 250), (-1000, 1000)]))
    out = t(dict(img=HU.copy()))['img']
    assert out.shape == (2, 3, 2)
    np.testing.assert_allclose(out[..., 1],
                               [[0, 0.4125, 0.51875], [0.625, 1, 0]])
    with pytest.raises(ValueError):
        TRANSFORMS.build(dict(type='HUWindow', windows=[(10, 10)]))
    with pytest.raises(TypeError):
        t(dict(img=np.zeros((2, 2, 1), np.uint16)))


@pytest.mark.parametrize('cfg', [
    dict(type='RandomIntensityScale', contrast_range=(2.0, 2.0), center=0.0),
    dict(type='RandomHUContrast', contrast_range=(2.0, 2.0), center=0.0),
    dict(type='RandomIntensityShift', delta=100.0),
    dict(type='RandomHUBrightness', delta=100.0),
    dict(type='RandomGaussianNoise', std_range=(5.0, 5.0)),
    dict(type='RandomFloatGaussianBlur', sigma_range=(1.0, 1.0)),
    dict(type='RandomGamma', gamma_range=(0.5, 0.5)),
])
def test_intensity_augs_float32_no_clip(cfg):
    np.random.seed(0)
    rng = np.random.default_rng(0)
    img = rng.uniform(-1024, 3000, (16, 16, 1)).astype(np.float32)
    img[:, :8] = -1000  # air on the left half
    img[0, 10, 0] = 3000
    t = TRANSFORMS.build(dict(cfg, prob=1.0))
    out = t(dict(img=img.copy()))['img']
    assert out.dtype == np.float32 and out.shape == img.shape
    if cfg['type'] != 'RandomGamma':
        assert not np.allclose(out, img)
        assert out.max() > 255 and out.min() < 0  # HU kept, no [0, 255]
    else:  # gamma: only acts inside value_range (default [0, 1])
        np.testing.assert_array_equal(out, img)
    if cfg['type'] in ('RandomIntensityScale', 'RandomHUContrast'):
        np.testing.assert_allclose(out, img * 2)
    t0 = TRANSFORMS.build(dict(cfg, prob=0.0))
    np.testing.assert_array_equal(t0(dict(img=img.copy()))['img'], img)


def test_gamma_on_windowed():
    np.random.seed(0)
    x = np.linspace(0, 1, 11, dtype=np.float32).reshape(1, 11, 1)
    out = TRANSFORMS.build(
        dict(type='RandomGamma', gamma_range=(2.0, 2.0), prob=1.0))(
            dict(img=x.copy()))['img']
    np.testing.assert_allclose(out, x**2, rtol=1e-5, atol=1e-7)
    assert out.dtype == np.float32


def test_brightness_range_and_repr():
    np.random.seed(1)
    img = np.zeros((4, 4, 1), np.float32)
    t = TRANSFORMS.build(dict(type='RandomHUBrightness', delta=10, prob=1))
    for _ in range(20):
        out = t(dict(img=img.copy()))['img']
        assert np.ptp(out) == 0 and -10 <= out[0, 0, 0] <= 10
    assert 'delta=10.0' in repr(t)


def test_names_do_not_shadow_upstream_and_compat_names_keep_defaults():
    """medssl's float blur has its own name, so ``RandomGaussianBlur`` is
    mmselfsup's (PIL, 8-bit); the compatibility HU names build, the
    brightness one with its HU default."""
    from mmselfsup.datasets.transforms import \
        RandomGaussianBlur as MMSelfSupBlur

    from medssl.datasets.transforms.intensity import (RandomFloatGaussianBlur,
                                                      RandomIntensityShift)
    assert TRANSFORMS.get('RandomGaussianBlur') is MMSelfSupBlur
    assert TRANSFORMS.get('RandomFloatGaussianBlur') is RandomFloatGaussianBlur
    assert TRANSFORMS.build(dict(type='RandomIntensityShift')).delta == 0.1
    compat = TRANSFORMS.build(dict(type='RandomHUBrightness'))
    assert isinstance(compat, RandomIntensityShift) and compat.delta == 20.0
    assert TRANSFORMS.build(
        dict(type='RandomGaussianNoise')).std_range == (0.0, 0.03)
