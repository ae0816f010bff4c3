"""Tests of the parameter-recording view transforms."""
import glob
import os.path as osp
import random

import numpy as np
import pytest
from mmcv.transforms import Compose, RandomApply, RandomFlip
from mmengine.config import Config
from mmengine.registry import DefaultScope

from medssl.datasets.transforms import (MultiViewWithParams,
                                        RandomFlipWithParams,
                                        RandomResizedCropWithParams,
                                        check_view_geometry)
from medssl.registry import TRANSFORMS


def _ramp(h=40, w=50):
    # img[y, x] = x + 1000 * y (float, HU-like range, 1 channel)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return (xx + 1000.0 * yy)[..., None]


def test_random_resized_crop_records_box_float():
    random.seed(0)
    t = RandomResizedCropWithParams(size=16, scale=(0.2, 0.6))
    img = _ramp()
    out = t(dict(img=img.copy()))
    assert out['img'].dtype == np.float32 and out['img'].shape == (16, 16, 1)
    assert out['img_shape'] == (16, 16)
    x0, y0, x1, y1 = out['crop_bbox']
    assert all(isinstance(v, float) for v in out['crop_bbox'])
    assert 0 <= x0 < x1 <= 50 and 0 <= y0 < y1 <= 40
    # Second crop: check the pixel values against the recorded box.
    t2 = RandomResizedCropWithParams(size=16, interpolation='bilinear')
    random.seed(3)
    out2 = t2(dict(img=img.copy()))
    x0, y0, x1, y1 = out2['crop_bbox']
    # Bilinear resize of a linear ramp: value at output pixel centre j is the
    # ramp at x0 + (j + 0.5) * (x1 - x0) / 16 - 0.5 (pixel-centre convention)
    # wherever the sample is inside the crop.
    j = 8
    expect = (x0 + (j + 0.5) * (x1 - x0) / 16 - 0.5) + 1000.0 * (
        y0 + (j + 0.5) * (y1 - y0) / 16 - 0.5)
    assert out2['img'][j, j, 0] == pytest.approx(expect, abs=0.5)
    # Values above 255 survive: no uint8 round trip.
    assert out2['img'].max() > 1000


def test_flip_records_and_flips():
    img = _ramp()
    out = RandomFlipWithParams(prob=1.0)(dict(img=img.copy()))
    assert out['flip'] is True
    np.testing.assert_array_equal(out['img'], img[:, ::-1])
    out = RandomFlipWithParams(prob=0.0)(dict(img=img.copy()))
    assert out['flip'] is False
    np.testing.assert_array_equal(out['img'], img)


def test_multiview_collects_params_and_pack():
    random.seed(1)
    with DefaultScope.overwrite_default_scope('medssl'):
        pipeline = _pack_pipeline()
    img = _ramp()
    _check_packed(pipeline(dict(img=img.copy())))


def _pack_pipeline():
    return Compose([
        dict(type='MultiViewWithParams', num_views=[2], transforms=[[
            dict(type='RandomResizedCropWithParams', size=24,
                 scale=(0.3, 1.0)),
            dict(type='RandomFlipWithParams', prob=0.5),
        ]]),
        dict(type='PackSelfSupInputs', key='img', meta_keys=['view_params']),
    ])


def _check_packed(packed):
    inputs = packed['inputs']
    assert len(inputs) == 2 and tuple(inputs[0].shape) == (1, 24, 24)
    vps = packed['data_samples'].metainfo['view_params']
    assert len(vps) == 2
    for v, im in zip(vps, inputs):
        assert set(v) == {'crop_bbox', 'flip', 'img_shape'}
        assert v['img_shape'] == (24, 24)
        # The view's content is consistent with its recorded box and flip.
        x0, y0, x1, y1 = v['crop_bbox']
        row = im[0, 12].numpy()
        slope = (row[-2] - row[1]) / (len(row) - 3)
        assert (slope < 0) == v['flip']
        assert abs(slope) == pytest.approx((x1 - x0) / 24, rel=1e-3)


def test_multiview_without_crop_uses_full_box():
    with DefaultScope.overwrite_default_scope('medssl'):
        t = TRANSFORMS.build(
            dict(type='MultiViewWithParams', num_views=2,
                 transforms=[[dict(type='RandomFlipWithParams', prob=1.0)]]))
    out = t(dict(img=_ramp()))
    assert out['view_params'][0] == dict(crop_bbox=(0.0, 0.0, 50.0, 40.0),
                                         flip=True, img_shape=(40, 50))
    assert isinstance(t, MultiViewWithParams)


@pytest.mark.parametrize('pipeline, match', [
    ([dict(type='RandomFlipWithParams', prob=0.0),
      dict(type='RandomResizedCropWithParams', size=8)], 'put the crop first'),
    ([dict(type='RandomResizedCropWithParams', size=8),
      dict(type='RandomRotate', prob=1.0, degree=10)], 'RandomRotate'),
    ([dict(type='mmseg.RandomFlip', prob=0.5)], 'mmseg.RandomFlip'),
])
def test_multiview_refuses_unrepresentable_geometry(pipeline, match):
    with pytest.raises(ValueError, match=match):
        MultiViewWithParams(num_views=2, transforms=[pipeline])


def test_crop_after_flip_raises_even_without_flipping():
    """Flip->crop order is an error whatever the coin says (prob=0 here),
    not only on the iterations that happen to flip."""
    flip = RandomFlipWithParams(prob=0.0)
    crop = RandomResizedCropWithParams(size=8)
    results = flip(dict(img=np.zeros((16, 16, 1), np.float32)))
    with pytest.raises(ValueError, match='crop first'):
        crop(results)


_CROP = dict(type='RandomResizedCropWithParams', size=8)
_FLIP = dict(type='RandomFlipWithParams', prob=0.5)
_SHIFT = dict(type='RandomIntensityShift', prob=1.0, delta=0.1)
_GAMMA = dict(type='RandomGamma', prob=1.0, gamma_range=(0.7, 1.5))


@pytest.mark.parametrize('pipeline, match', [
    # A non-recording geometric transform hidden in a wrapper.
    ([_CROP, dict(type='RandomApply', prob=0.5,
                  transforms=[dict(type='RandomFlip', prob=1.0)])],
     'RandomApply > RandomFlip changes the view geometry'),
    ([_CROP, dict(type='mmcv.RandomApply',
                  transforms=dict(type='mmseg.RandomFlip', prob=1.0))],
     'mmseg.RandomFlip'),
    ([_CROP, dict(type='RandomChoice', transforms=[
        [_SHIFT], [dict(type='Compose', transforms=[
            _GAMMA, dict(type='RandomRotation', degrees=10)])]])],
     'RandomChoice > Compose > RandomRotation'),
    ([dict(type='SomeWrapper', ops=[[_SHIFT], [[dict(type='Resize',
                                                   scale=(8, 8))]]])],
     'SomeWrapper > Resize'),
    # A recording flip that can run before the crop.
    ([dict(type='RandomApply', transforms=[_FLIP]), _CROP],
     'RandomApply > RandomFlipWithParams can run before '
     'RandomResizedCropWithParams'),
    ([dict(type='RandomOrder', transforms=[_CROP, _SHIFT, _FLIP])],
     'inside RandomOrder, which does not fix their order'),
    ([dict(type='RandomChoice', transforms=[[_CROP], [_FLIP, _CROP]])],
     'RandomChoice > RandomFlipWithParams can run before'),
    ([dict(type='Compose', transforms=[[_SHIFT, _FLIP]]),
      dict(type='RandomChoice', transforms=[[_GAMMA], [_CROP]])],
     'Compose > RandomFlipWithParams can run before '
     'RandomChoice > RandomResizedCropWithParams'),
])
def test_check_view_geometry_refuses_nested(pipeline, match):
    """Wrappers (RandomApply, RandomChoice, RandomOrder, Compose, any dict
    holding transform lists, nested lists) are searched at any depth."""
    with pytest.raises(ValueError, match=match):
        check_view_geometry(pipeline)
    with pytest.raises(ValueError, match='put the crop first|without record'):
        MultiViewWithParams(num_views=2, transforms=[pipeline])


def test_check_view_geometry_refuses_built_wrapper():
    """A built mmcv wrapper (not a config dict) is searched too."""
    wrapped = RandomApply(transforms=[RandomFlip(prob=1.0)], prob=0.5)
    with pytest.raises(ValueError, match='RandomApply > RandomFlip'):
        MultiViewWithParams(
            num_views=2, transforms=[[RandomResizedCropWithParams(8),
                                      wrapped]])


_NESTED_OK = [
    [_CROP, dict(type='RandomApply', transforms=[_FLIP], prob=0.5),
     dict(type='RandomChoice', transforms=[[_SHIFT], [_GAMMA, _SHIFT]])],
    [dict(type='RandomChoice', transforms=[[_CROP, _FLIP], [_CROP]]),
     dict(type='RandomOrder', transforms=[[_SHIFT, _FLIP], _GAMMA])],
    [dict(type='Compose', transforms=[_CROP, dict(
        type='RandomApply', transforms=dict(type='Compose', transforms=[
            _FLIP, _SHIFT]))])],
]


@pytest.mark.parametrize('pipeline', _NESTED_OK)
def test_check_view_geometry_accepts_nested(pipeline):
    """Nested wrappers whose flips always follow the crop are accepted."""
    check_view_geometry(pipeline)


@pytest.mark.parametrize('pipeline', [_NESTED_OK[0], _NESTED_OK[2]])
def test_nested_views_match_recorded_params(pipeline):
    """Built from nested wrappers (mmcv RandomApply / RandomChoice /
    Compose; RandomOrder is not registered here), the views still match
    their recorded box and flip."""
    random.seed(2)
    np.random.seed(2)  # RandomApply / RandomChoice / intensity draw here
    with DefaultScope.overwrite_default_scope('medssl'):
        t = TRANSFORMS.build(dict(type='MultiViewWithParams', num_views=8,
                                  transforms=[pipeline]))
    # Ramp scaled into [0, 1] (RandomGamma's range), then intensity changes
    # that keep the order of values: the sign of a row's slope says whether
    # the view was flipped.
    out = t(dict(img=_ramp() / 40000.0))
    flips = [v['flip'] for v in out['view_params']]
    for v, im in zip(out['view_params'], out['img']):
        x0, _, x1, _ = v['crop_bbox']
        row = im[4, :, 0]
        assert (row[-1] < row[0]) == v['flip']
        assert v['img_shape'] == (8, 8) and 0 <= x0 < x1 <= 50
    # Flips (p=0.25 or 0.5) on 8 views: both outcomes show up (seeded).
    assert True in flips and False in flips


def _shipped_view_pipelines():
    root = osp.join(osp.dirname(__file__), '..', '..', '..', 'configs',
                    'selfsup')
    found = []
    for path in sorted(glob.glob(osp.join(root, '**', '*.py'),
                                 recursive=True)):
        if '_base_' in path:
            continue
        pipe = Config.fromfile(path).train_dataloader.dataset.pipeline
        found += [(osp.basename(path), t) for t in pipe
                  if t['type'] == 'MultiViewWithParams']
    return found


def test_shipped_selfsup_configs_pass_view_check():
    """Every shipped pretraining config's MultiViewWithParams builds (which
    runs the check) and its view pipelines pass the check."""
    found = _shipped_view_pipelines()
    names = {n for n, _ in found}
    # All 16 shipped configs use the recording views (none silently lost).
    assert len(names) == 16 and \
        'mocov2-local-decor_r18_1xb4-6it_phantom.py' in names
    for name, cfg in found:
        for pipeline in cfg['transforms']:
            check_view_geometry(pipeline)
        with DefaultScope.overwrite_default_scope('medssl'):
            t = TRANSFORMS.build(cfg)
        assert isinstance(t, MultiViewWithParams), name
