"""Downstream configs: model selection never sees the held-out split, every
linear probe uses LinearProbeHead, label-efficiency configs say their
volume count."""
import glob
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BENCH = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation')
CONFIGS = sorted(
    p for p in glob.glob(osp.join(BENCH, '*', '*.py'))
    if '_base_' not in p)


def _ds(loader):
    ds = loader['dataset']
    while 'dataset' in ds:
        ds = ds['dataset']
    return ds


def test_configs_found():
    assert len(CONFIGS) >= 20
    assert any('btcv-phantom' in p for p in CONFIGS)


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_val_is_not_test(path):
    cfg = Config.fromfile(path)
    train, val, test = (_ds(cfg[f'{k}_dataloader'])
                        for k in ('train', 'val', 'test'))
    assert train['ann_file'] == 'splits/train.txt'
    assert val['ann_file'] == 'splits/val.txt'  # model selection
    assert test['ann_file'] == 'splits/test.txt'  # held out
    assert val['data_root'] == test['data_root'] == train['data_root']
    if cfg.default_hooks.checkpoint.get('save_best'):
        assert val['ann_file'] != test['ann_file']
    assert cfg.test_evaluator['hd95'] is True


LINEAR = [p for p in CONFIGS if osp.basename(p).startswith('linear_')]


@pytest.mark.parametrize('path', LINEAR, ids=osp.basename)
def test_linear_probes_use_the_bn_head_on_a_frozen_backbone(path):
    cfg = Config.fromfile(path)
    head, bb = cfg.model.decode_head, cfg.model.backbone
    assert head.type == 'LinearProbeHead'
    assert head.norm_cfg.get('affine', False) is False
    # SyncBN for the DDP (4xb4) configs, BN for the one-process smoke runs
    assert head.norm_cfg.type == ('SyncBN' if '4xb4' in path else 'BN')
    assert bb.frozen_stages == 4 and bb.norm_eval is True
    assert cfg.model.auxiliary_head is None


def test_phantom_probe_overrides_still_work():
    cfg = Config.fromfile(osp.join(BENCH, 'btcv',
                                   'linear_r18_1xb2-20it_btcv-phantom.py'))
    cfg.merge_from_dict({
        'model.decode_head.num_classes': 5,
        'model.backbone.init_cfg.checkpoint': '/x.pth',
        'model.backbone.init_cfg.type': 'VerifiedPretrained'})
    assert cfg.model.decode_head.num_classes == 5
    assert cfg.model.backbone.init_cfg.checkpoint == '/x.pth'


@pytest.mark.parametrize('ssl', ['', '_ssl'])
@pytest.mark.parametrize('old,count', [(1, 1), (10, 2), (25, 5)])
def test_volume_count_configs_and_old_names(ssl, old, count):
    name = f'deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512{ssl}'
    new = Config.fromfile(osp.join(BENCH, 'btcv', f'{name}_{count}vol.py'))
    alias = Config.fromfile(osp.join(BENCH, 'btcv', f'{name}_frac{old}.py'))
    for cfg in (new, alias):
        assert cfg.train_dataloader.dataset.num_cases == count
    # of the 20 training volumes: 10 % and 25 % are exact
    assert count / 20 == {1: .05, 10: .1, 25: .25}[old]
