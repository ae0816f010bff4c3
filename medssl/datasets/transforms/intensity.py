"""HUWindow and intensity augmentations for float CT images.

All transforms act on float32 images (H, W, C) with numpy/cv2 float ops.
They never use mmcv's 8-bit photometric ops and never clip to [0, 255].
The augmentations are unit-agnostic: their parameters are in the units of
the image they get -- the windowed [0, 1] values when placed after
:class:`HUWindow`, as in every shipped config (the defaults are chosen for
that), or HU when placed before it. Random parameters are drawn from
numpy's global RNG (seeded by mmengine's ``set_random_seed`` /
worker_init_fn), like mmcv's transforms.

Names: ``RandomHUContrast`` / ``RandomHUBrightness`` are compatibility names
(docs/DESIGN.md) of ``RandomIntensityScale`` / ``RandomIntensityShift`` with
HU defaults. ``RandomGaussianBlur`` is mmselfsup's PIL (8-bit) blur with other
arguments (``sigma_min``, ``sigma_max``); the float blur here is
``RandomFloatGaussianBlur``.
"""
from typing import Optional, Sequence, Tuple

import cv2
import numpy as np
from mmcv.transforms import BaseTransform

from medssl.registry import TRANSFORMS

__all__ = [
    'HUWindow', 'RandomIntensityScale', 'RandomIntensityShift', 'RandomGamma',
    'RandomGaussianNoise', 'RandomFloatGaussianBlur', 'RandomHUContrast',
    'RandomHUBrightness'
]


def _float_img(results: dict, name: str) -> np.ndarray:
    img = results['img']
    if not np.issubdtype(img.dtype, np.floating):
        raise TypeError(f'{name} expects a float image (HU or windowed), got '
                        f'{img.dtype}; load slices with LoadCTSlice')
    return img.astype(np.float32, copy=False)


@TRANSFORMS.register_module()
class HUWindow(BaseTransform):
    """Map HU to one channel per window: ``clip((hu - lo) / (hi - lo), 0, 1)``.

    Args:
        windows: sequence of (low, high) HU windows. Default: abdomen
            soft-tissue window (-175, 250).
    Input ``img`` (H, W) or (H, W, 1) float HU; output (H, W, len(windows))
    float32.
    """

    def __init__(self, windows: Sequence[Tuple[float, float]] = ((-175, 250),
                                                                 )):
        windows = [tuple(float(v) for v in w) for w in windows]
        if not windows:
            raise ValueError('HUWindow needs at least one window')
        for lo, hi in windows:
            if not hi > lo:
                raise ValueError(f'bad HU window ({lo}, {hi}): need high > '
                                 f'low')
        self.windows = windows

    def transform(self, results: dict) -> dict:
        img = _float_img(results, 'HUWindow')
        if img.ndim == 3:
            if img.shape[2] != 1:
                raise ValueError(f'HUWindow expects a 1-channel HU image, got '
                                 f'shape {img.shape}')
            img = img[..., 0]
        chans = [
            np.clip((img - np.float32(lo)) / np.float32(hi - lo), 0, 1)
            for lo, hi in self.windows
        ]
        results['img'] = np.stack(chans, axis=-1).astype(np.float32)
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(windows={self.windows})'


class _RandomIntensity(BaseTransform):

    def __init__(self, prob: float = 0.5):
        if not 0 <= prob <= 1:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob

    def transform(self, results: dict) -> dict:
        img = _float_img(results, self.__class__.__name__)
        if np.random.rand() < self.prob:
            img = self._apply(img).astype(np.float32, copy=False)
        results['img'] = img
        return results

    def _apply(self, img: np.ndarray) -> np.ndarray:
        raise NotImplementedError


@TRANSFORMS.register_module()
class RandomIntensityScale(_RandomIntensity):
    """Contrast: scale intensities around a centre, ``(x - c) * f + c`` with
    ``f ~ U(contrast_range)``; ``center`` in image units (0.5 = mid-window
    after HUWindow, e.g. 40 HU before it), the image mean when None."""

    def __init__(self, contrast_range=(0.8, 1.2), center: Optional[float] =
                 None, prob: float = 0.5):
        super().__init__(prob)
        self.contrast_range = tuple(contrast_range)
        self.center = center

    def _apply(self, img):
        f = np.float32(np.random.uniform(*self.contrast_range))
        c = np.float32(img.mean() if self.center is None else self.center)
        return (img - c) * f + c

    def __repr__(self):
        return (f'{self.__class__.__name__}(contrast_range='
                f'{self.contrast_range}, center={self.center}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class RandomIntensityShift(_RandomIntensity):
    """Brightness: add an offset ``~ U(-delta, delta)`` in image units
    (default 0.1 = a tenth of the window after HUWindow; HU before it)."""

    def __init__(self, delta: float = 0.1, prob: float = 0.5):
        super().__init__(prob)
        self.delta = float(delta)

    def _apply(self, img):
        return img + np.float32(np.random.uniform(-self.delta, self.delta))

    def __repr__(self):
        return (f'{self.__class__.__name__}(delta={self.delta}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class RandomGamma(_RandomIntensity):
    """Gamma on a windowed image: ``x -> lo + (hi-lo) * ((x-lo)/(hi-lo))**g``
    with ``g ~ exp(U(log g0, log g1))``; ``value_range=(lo, hi)`` defaults to
    (0, 1) (use after HUWindow). Values outside the range pass unchanged."""

    def __init__(self, gamma_range=(0.7, 1.5), value_range=(0.0, 1.0),
                 prob: float = 0.5):
        super().__init__(prob)
        if min(gamma_range) <= 0:
            raise ValueError('gamma must be > 0')
        self.gamma_range = tuple(gamma_range)
        self.value_range = tuple(float(v) for v in value_range)

    def _apply(self, img):
        g = np.exp(np.random.uniform(*np.log(self.gamma_range)))
        lo, hi = self.value_range
        t = (img - lo) / (hi - lo)
        inside = (t >= 0) & (t <= 1)
        out = img.copy()
        out[inside] = lo + (hi - lo) * np.power(t[inside], g)
        return out

    def __repr__(self):
        return (f'{self.__class__.__name__}(gamma_range={self.gamma_range}, '
                f'value_range={self.value_range}, prob={self.prob})')


@TRANSFORMS.register_module()
class RandomGaussianNoise(_RandomIntensity):
    """Add Gaussian noise with std ``~ U(std_range)`` in image units
    (default up to 0.03 of the window after HUWindow; HU before it)."""

    def __init__(self, std_range=(0.0, 0.03), prob: float = 0.5):
        super().__init__(prob)
        self.std_range = tuple(std_range)

    def _apply(self, img):
        std = np.random.uniform(*self.std_range)
        return img + np.random.normal(0, std, img.shape).astype(np.float32)

    def __repr__(self):
        return (f'{self.__class__.__name__}(std_range={self.std_range}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class RandomFloatGaussianBlur(_RandomIntensity):
    """Gaussian blur of a float image (cv2 on float32, any range, no 8-bit
    round trip) with sigma ``~ U(sigma_range)`` pixels. Not mmselfsup's
    ``RandomGaussianBlur`` (PIL on uint8 RGB, ``sigma_min``/``sigma_max``)."""

    def __init__(self, sigma_range=(0.1, 1.5), prob: float = 0.5):
        super().__init__(prob)
        self.sigma_range = tuple(sigma_range)

    def _apply(self, img):
        sigma = float(np.random.uniform(*self.sigma_range))
        out = cv2.GaussianBlur(img, (0, 0), sigmaX=sigma, sigmaY=sigma,
                               borderType=cv2.BORDER_REFLECT_101)
        return out.reshape(img.shape)

    def __repr__(self):
        return (f'{self.__class__.__name__}(sigma_range={self.sigma_range}, '
                f'prob={self.prob})')


@TRANSFORMS.register_module()
class RandomHUContrast(RandomIntensityScale):
    """:class:`RandomIntensityScale` under its compatibility name (same
    defaults; docs/DESIGN.md)."""


@TRANSFORMS.register_module()
class RandomHUBrightness(RandomIntensityShift):
    """:class:`RandomIntensityShift` under its compatibility name
    (docs/DESIGN.md), with ``delta=20`` by default: HU units, for use before
    HUWindow."""

    def __init__(self, delta: float = 20.0, prob: float = 0.5):
        super().__init__(delta=delta, prob=prob)
