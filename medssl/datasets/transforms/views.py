"""View transforms that record their crop box and flip.

The local patch loss of MedMoCo (Hassanpour et al., ISBI 2024, arXiv
2402.14611) needs to know where each view came from to match the same
physical cells in both views. These transforms behave like mmselfsup's
``RandomResizedCrop`` / a horizontal flip / ``MultiView``, and record:

* ``crop_bbox = (x0, y0, x1, y1)``: the crop in original-slice pixel
  coordinates, continuous (pixel i covers [i, i+1)), floats;
* ``flip``: whether the view was flipped horizontally (after the crop);
* ``view_params``: list (one per view) of
  ``dict(crop_bbox, flip, img_shape=(h, w))``.

Images are float32 (H, W, C) (HU-windowed); resizing uses cv2 on floats.
"""
import copy
import random
from typing import List, Optional, Sequence, Union

import cv2
import numpy as np
from mmcv.transforms import BaseTransform
from mmselfsup.datasets.transforms import MultiView
from mmselfsup.datasets.transforms import \
    RandomResizedCrop as _SelfSupRandomResizedCrop

from medssl.registry import TRANSFORMS

__all__ = [
    'RandomResizedCropWithParams', 'RandomFlipWithParams',
    'MultiViewWithParams', 'check_view_geometry'
]

_CV2_INTERP = {
    'nearest': cv2.INTER_NEAREST,
    'bilinear': cv2.INTER_LINEAR,
    'bicubic': cv2.INTER_CUBIC,
    'area': cv2.INTER_AREA,
    'lanczos': cv2.INTER_LANCZOS4,
}


def _resize_float(img: np.ndarray, size_hw: Sequence[int],
                  interpolation: str) -> np.ndarray:
    """cv2 resize that keeps float dtype and a trailing channel axis."""
    h, w = int(size_hw[0]), int(size_hw[1])
    out = cv2.resize(
        img, (w, h), interpolation=_CV2_INTERP[interpolation])
    if img.ndim == 3 and out.ndim == 2:  # cv2 drops a channel axis of 1
        out = out[..., None]
    return out


@TRANSFORMS.register_module()
class RandomResizedCropWithParams(_SelfSupRandomResizedCrop):
    """mmselfsup ``RandomResizedCrop`` that records ``crop_bbox``.

    Same arguments as mmselfsup's ``RandomResizedCrop`` (``size``, ``scale``,
    ``ratio``, ``max_attempts``, ``interpolation``); the resize is done with
    cv2 on the float image (no uint8 round trip).

    Added keys: ``crop_bbox`` (x0, y0, x1, y1) floats in original pixels,
    ``img_shape``. If ``crop_bbox`` is already present (an earlier crop),
    the new box is composed with it so it stays in original coordinates.
    """

    def transform(self, results: dict) -> dict:
        img = results['img']
        in_h, in_w = img.shape[:2]
        ymin, xmin, ymax, xmax = self.get_params(img, self.scale, self.ratio,
                                                 self.max_attempts)
        crop = img[ymin:ymax + 1, xmin:xmax + 1]
        out = _resize_float(crop, self.size, self.interpolation)
        # Continuous box of the crop in the input's pixel coordinates.
        box = np.array([xmin, ymin, xmax + 1, ymax + 1], dtype=np.float64)
        prev = results.get('crop_bbox')
        if 'flip' in results:
            # Whether or not it flipped this time: the recorded geometry
            # (crop, then flip) cannot represent flip-then-crop.
            raise ValueError(
                'RandomResizedCropWithParams after RandomFlipWithParams: the '
                'recorded view geometry is crop-then-flip; put the crop first')
        if prev is not None:
            px0, py0, px1, py1 = prev
            sx, sy = (px1 - px0) / in_w, (py1 - py0) / in_h
            box = np.array([
                px0 + box[0] * sx, py0 + box[1] * sy, px0 + box[2] * sx,
                py0 + box[3] * sy
            ])
        results['img'] = out
        results['img_shape'] = out.shape[:2]
        results['crop_bbox'] = tuple(float(v) for v in box)
        return results


@TRANSFORMS.register_module()
class RandomFlipWithParams(BaseTransform):
    """Horizontal flip with probability ``prob`` that records ``flip``.

    Args:
        prob: flip probability.

    Added keys: ``flip`` (bool; toggled if already present).
    """

    def __init__(self, prob: float = 0.5) -> None:
        assert 0.0 <= prob <= 1.0
        self.prob = prob

    def transform(self, results: dict) -> dict:
        do_flip = random.random() < self.prob
        if do_flip:
            results['img'] = np.ascontiguousarray(results['img'][:, ::-1])
        results['flip'] = bool(results.get('flip', False)) ^ do_flip
        return results

    def __repr__(self) -> str:
        return f'{self.__class__.__name__}(prob={self.prob})'


_CROP, _FLIP = 'RandomResizedCropWithParams', 'RandomFlipWithParams'
_RECORDING = (_CROP, _FLIP)
# Name fragments of transforms that move pixels without recording it.
_GEOMETRIC = ('Crop', 'Flip', 'Resize', 'Rotat', 'Affine', 'Shear',
              'Translate', 'Pad', 'Rescale', 'Elastic', 'Zoom', 'Transpose')
# Wrappers (mmcv) that run their nested transforms in the listed order
# (RandomApply: all or none) and the one that runs one listed option.
# Any other holder of nested transforms (RandomOrder, unknown types) is
# assumed to run them in any order.
_SEQUENTIAL = ('Compose', 'RandomApply', 'KeyMapper', 'TransformBroadcaster')
_CHOICE = ('RandomChoice', )


class _Geometry:
    """What a (sub-)pipeline can do to the view geometry.

    ``flip`` / ``crop``: path of a flip / crop it can run (None if none);
    ``error``: why it cannot be represented (None if it can).
    """

    def __init__(self, flip=None, crop=None, error=None):
        self.flip, self.crop, self.error = flip, crop, error


def _type_name(t) -> str:
    """Registry name of a transform config (or the class name of a built
    transform), without a scope prefix such as ``mmcv.``."""
    name = t.get('type') if isinstance(t, dict) else type(t).__name__
    if not isinstance(name, str):
        name = getattr(name, '__name__', str(name))
    return name


def _is_transform(v) -> bool:
    return (isinstance(v, dict) and 'type' in v) or isinstance(
        v, BaseTransform)


def _is_pipeline(v) -> bool:
    """A transform, or a non-empty list of transforms / such lists."""
    if _is_transform(v):
        return True
    return isinstance(v, (list, tuple)) and len(v) > 0 and all(
        _is_transform(x) or (isinstance(x, (list, tuple)) and _is_pipeline(x))
        for x in v)


def _nested(t) -> list:
    """The nested pipelines held by a wrapper transform: every value (of a
    config dict, or the ``transforms`` of a built wrapper) that is a
    transform or a list of transforms / lists."""
    if isinstance(t, dict):
        values = [v for k, v in t.items() if k != 'type' and _is_pipeline(v)]
    else:
        inner = getattr(t, 'transforms', None)
        inner = getattr(inner, 'transforms', inner)  # a built Compose
        values = [list(inner)] if _is_pipeline(
            list(inner) if isinstance(inner, (list, tuple)) else inner) \
            else []
    return [v if isinstance(v, (list, tuple)) else [v] for v in values]


def _sequence(parts: List[_Geometry], where: str) -> _Geometry:
    """Parts run one after the other: a flip before any later crop is an
    error."""
    flip = crop = None
    for part in parts:
        if part.error:
            return part
        if part.crop and flip:
            return _Geometry(error=f'{flip} can run before {part.crop}{where}')
        flip, crop = flip or part.flip, crop or part.crop
    return _Geometry(flip, crop)


def _any_order(parts: List[_Geometry], where: str) -> _Geometry:
    """Parts run in an order we cannot see: a flip in one part and a crop in
    another is an error (the flip may come first)."""
    for part in parts:
        if part.error:
            return part
    for i, a in enumerate(parts):
        for j, b in enumerate(parts):
            if i != j and a.flip and b.crop:
                return _Geometry(
                    error=f'{a.flip} can run before {b.crop}{where}')
    return _Geometry(
        next((p.flip for p in parts if p.flip), None),
        next((p.crop for p in parts if p.crop), None))


def _geometry(t, path: str) -> _Geometry:
    """Summarise one transform (or nested list = sub-pipeline) at ``path``;
    raise ``ValueError`` for a geometric transform that does not record."""
    if isinstance(t, (list, tuple)):
        return _sequence([_geometry(x, path) for x in t], '')
    name = _type_name(t)
    short = name.split('.')[-1]
    here = f'{path} > {name}' if path else name
    if short not in _RECORDING and any(g in name for g in _GEOMETRIC):
        raise ValueError(
            f'MultiViewWithParams: {here} changes the view geometry '
            'without recording it in view_params (the local loss would '
            'match the wrong cells); use RandomResizedCropWithParams / '
            'RandomFlipWithParams')
    nested = _nested(t)
    if not nested:
        return _Geometry(flip=here if short == _FLIP else None,
                         crop=here if short == _CROP else None)
    where = f' (inside {name}, which does not fix their order)'
    if short in _SEQUENTIAL:
        return _sequence(
            [_geometry(x, here) for v in nested for x in v], '')
    if short in _CHOICE:  # one option runs; each option keeps its order
        parts = [_geometry(x, here) for v in nested for x in v]
        bad = next((p for p in parts if p.error), None)
        return bad or _Geometry(
            next((p.flip for p in parts if p.flip), None),
            next((p.crop for p in parts if p.crop), None))
    return _any_order([_geometry(x, here) for v in nested for x in v], where)


def check_view_geometry(pipeline: Sequence) -> None:
    """Refuse a view pipeline whose geometry ``view_params`` cannot
    represent: a geometric transform that does not record itself, or a flip
    that can run before the crop (the recorded geometry is crop-then-flip).

    Nested transforms are checked too: every list of transforms held by a
    wrapper (mmcv ``Compose`` / ``RandomApply`` / ``RandomChoice`` /
    ``KeyMapper``, a ``RandomOrder``, any ``dict(type=..., transforms=[...])``
    or list of such lists), at any depth. ``RandomChoice`` runs one option,
    the sequential wrappers keep their order, and any other wrapper is taken
    to run its transforms in any order. Raises ``ValueError`` naming the
    transform and the wrappers around it."""
    geo = _sequence([_geometry(t, '') for t in pipeline], '')
    if geo.error:
        raise ValueError(
            f'MultiViewWithParams: {geo.error}; the recorded geometry is '
            'crop-then-flip, put the crop first')


@TRANSFORMS.register_module()
class MultiViewWithParams(MultiView):
    """mmselfsup ``MultiView`` that also collects each view's parameters.

    Same arguments as ``MultiView`` (``transforms``, ``num_views``). Adds
    ``results['view_params']``: list (one per view) of
    ``dict(crop_bbox=(x0, y0, x1, y1), flip=bool, img_shape=(h, w))``.
    A view without a crop gets the full-image box, without a flip
    ``flip=False``. Use ``PackSelfSupInputs(key='img',
    meta_keys=['view_params'])`` to move it to ``data_sample.metainfo``.
    """

    def __init__(self, transforms: List[List], num_views: Union[int,
                                                               List[int]]):
        for pipeline in transforms:
            check_view_geometry(pipeline)
        super().__init__(transforms=transforms, num_views=num_views)

    def transform(self, results: dict) -> Optional[dict]:
        h, w = results['img'].shape[:2]
        imgs, params = [], []
        for trans in self.transforms:
            outputs = trans(copy.deepcopy(results))
            imgs.append(outputs['img'])
            params.append(
                dict(
                    crop_bbox=tuple(
                        float(v) for v in outputs.get(
                            'crop_bbox', (0.0, 0.0, float(w), float(h)))),
                    flip=bool(outputs.get('flip', False)),
                    img_shape=tuple(int(v) for v in outputs['img'].shape[:2])))
        results['img'] = imgs
        results['view_params'] = params
        return results
