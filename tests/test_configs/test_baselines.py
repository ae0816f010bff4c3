"""Baseline SSL configs (SimCLR, BYOL, Barlow Twins, DenseCL) on CT.

Every tiny phantom config trains 2 iterations with mmengine's Runner on the
converted AbdomenCT-1K phantom with a finite loss; the full ResNet-50
configs parse and keep the contract (in_channels=1, the lead's bases).
"""
import copy
import glob
import math
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
ALGOS = ('simclr', 'byol', 'barlowtwins', 'densecl')
TYPES = dict(simclr='SimCLR',
             byol='BYOL',
             barlowtwins='BarlowTwins',
             densecl='DenseCL')


def _configs(algo, pattern):
    found = sorted(
        glob.glob(osp.join(ROOT, 'configs', 'selfsup', algo, pattern)))
    assert len(found) == 1, (algo, pattern, found)
    return found[0]


@pytest.mark.parametrize('algo', ALGOS)
def test_full_config_contract(algo):
    cfg = Config.fromfile(_configs(algo, f'{algo}_r50_*abdomen1k.py'))
    assert cfg.default_scope == 'medssl'
    assert cfg.model.type == TYPES[algo]
    assert cfg.model.backbone.depth == 50
    assert cfg.model.backbone.in_channels == 1
    assert cfg.model.data_preprocessor.mean == [0.5]
    assert cfg.train_dataloader.dataset.type == 'CTSliceDataset'
    assert cfg.train_dataloader.dataset.ann_file == 'splits/pretrain.txt'


@pytest.mark.slow
@pytest.mark.parametrize('algo', ALGOS)
def test_tiny_config_trains(algo, abdomen1k_slices_root, tmp_path):
    from mmengine.runner import Runner

    from medssl.utils import register_all_modules
    register_all_modules()
    cfg = Config.fromfile(_configs(algo, f'{algo}_r18_*_phantom.py'))
    assert cfg.model.backbone.depth == 18
    assert cfg.model.backbone.in_channels == 1
    cfg = copy.deepcopy(cfg)
    cfg.work_dir = str(tmp_path)
    cfg.train_dataloader.dataset.data_root = abdomen1k_slices_root
    cfg.train_cfg.max_iters = 2
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook',
                                        interval=100,
                                        by_epoch=False,
                                        save_last=False)
    cfg.visualizer.vis_backends = [dict(type='LocalVisBackend')]
    runner = Runner.from_cfg(cfg)
    runner.train()
    assert runner.iter == 2
    hub = runner.message_hub
    losses = hub.get_scalar('train/loss').data[0]
    assert len(losses) == 2
    assert all(math.isfinite(v) for v in losses), losses
    if any(
            h.get('type') == 'CollapseMonitorHook'
            for h in cfg.get('custom_hooks', [])):
        assert math.isfinite(hub.get_scalar('train/effective_rank').current())
