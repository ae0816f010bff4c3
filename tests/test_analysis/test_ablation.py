"""Tests of the method-ablation helpers (config patches, statistics)."""
import math
import os.path as osp

import pytest

from medssl.analysis.ablation import (VARIANTS, patch_intensity, summarize,
                                      variant_config)
from medssl.analysis.variants import DIAGNOSIS, SWITCHES

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def _views(cfg):
    mv = [t for t in cfg.train_dataloader.dataset.pipeline
          if t['type'] == 'MultiViewWithParams'][0]
    return mv['transforms'][0]


def test_intensity_levels_scale_towards_identity():
    pipeline = [dict(type='MultiViewWithParams', num_views=2, transforms=[[
        dict(type='RandomResizedCropWithParams', size=8),
        dict(type='RandomIntensityScale', contrast_range=(0.6, 1.4)),
        dict(type='RandomIntensityShift', delta=0.1),
        dict(type='RandomGaussianNoise', std_range=(0.0, 0.04)),
    ]])]
    mild = patch_intensity(pipeline, 'mild')[0]['transforms'][0]
    assert mild[1]['contrast_range'] == pytest.approx((0.8, 1.2))
    assert mild[2]['delta'] == pytest.approx(0.05)
    assert mild[3]['std_range'] == pytest.approx((0.0, 0.02))
    none = patch_intensity(pipeline, 'none')[0]['transforms'][0]
    assert [t['type'] for t in none] == ['RandomResizedCropWithParams']
    # the input is not modified
    assert pipeline[0]['transforms'][0][2]['delta'] == 0.1


@pytest.mark.parametrize('name', list(VARIANTS))
def test_every_variant_builds_its_config(name):
    cfg = variant_config(REPO, name, 'mild')
    model = cfg.model
    decor = model.get('decorrelation')
    # diagnosis variants are the full method plus one change
    sw = SWITCHES['full' if name in DIAGNOSIS else name]
    if sw['decorrelation'] is None:
        assert decor is None
    else:
        assert decor['type'] == 'EigenDecorrelationNeck'
        assert decor['shuffle_groups'] == sw['decorrelation']['shuffle_groups']
    has_loss = sw['decorrelation_loss'] is not None
    assert (model.get('decorrelation_loss') is not None) == has_loss
    assert (model.get('local_head') is not None) == sw['local']
    views = _views(cfg)
    assert [t['type'] for t in views][:2] == ['RandomResizedCropWithParams',
                                              'RandomFlipWithParams']
    if name == 'full-local1':
        assert model.local_weight == 1.0
    if name == 'full-perpos':
        assert model.decorrelation_loss.per_position is True
    assert tuple(views[0]['scale']) == ((0.5, 1.0) if name == 'full-crop0.5'
                                        else (0.2, 1.0))


def test_summarize_paired_difference_by_seed():
    recs = [dict(variant='mocov2', seed=s, mDice=d)
            for s, d in enumerate([10.0, 12.0, 11.0])]
    recs += [dict(variant='full', seed=s, mDice=d)
             for s, d in enumerate([13.0, 14.0, 15.0])]
    out = summarize(recs)
    assert out['full']['mDice']['mean'] == pytest.approx(14.0)
    assert out['full']['mDice']['sd'] == pytest.approx(1.0)
    diff = out['full']['mDice']['vs_mocov2']
    # differences 3, 2, 4 -> mean 3, sd 1, t = 3 / (1 / sqrt 3)
    assert diff['mean_diff'] == pytest.approx(3.0)
    assert diff['t'] == pytest.approx(3.0 * math.sqrt(3))
    assert 'vs_mocov2' not in out['mocov2']['mDice']
