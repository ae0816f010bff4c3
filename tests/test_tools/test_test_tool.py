"""Downstream benchmark configs; tools/train.py -> tools/test.py on
phantoms."""
import glob
import json
import os
import os.path as osp
import runpy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from mmengine.config import Config

from medssl.registry import DATASETS, MODELS
from medssl.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[2]
CFG_DIR = ROOT / 'configs/benchmarks/mmsegmentation'
BTCV = CFG_DIR / 'btcv'
register_all_modules()


def data_root_opts(root):
    return [f'{k}_dataloader.dataset.data_root={root}'
            for k in ('train', 'val', 'test')]


def ssl_checkpoint(path):
    """A MedMoCo-like SSL checkpoint with a ResNet-18 (in_channels=1)."""
    torch.manual_seed(0)
    bb = MODELS.build(dict(type='ResNet', depth=18, in_channels=1))
    # perturbed so they cannot coincide with a seeded random init
    state = {f'backbone.{k}': (v + 0.01 * torch.randn_like(v))
             if v.is_floating_point() else v
             for k, v in bb.state_dict().items()}
    state['neck.mlp.0.weight'] = torch.randn(8, 512)
    state['decorrelation.running_mean'] = torch.randn(512)
    state['decorrelation.running_whitening'] = torch.eye(128).repeat(4, 1, 1)
    torch.save(dict(meta=dict(), state_dict=state), path)
    return state


def tool_main(name):
    """``main(argv)`` of tools/<name>.py, run in this process."""
    return runpy.run_path(str(ROOT / 'tools' / f'{name}.py'))['main']


def run(args, cwd=ROOT):
    r = subprocess.run([sys.executable] + [str(a) for a in args],
                       capture_output=True, text=True, cwd=cwd)
    assert r.returncode == 0, (r.stdout[-3000:], r.stderr[-5000:])
    return r.stdout + r.stderr


def infos(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def all_configs():
    return sorted(p for p in glob.glob(str(CFG_DIR / '*' / '*.py')))


@pytest.mark.slow
def test_all_benchmark_configs_build():
    names = [osp.basename(p) for p in all_configs()]
    for must in ('fcn_r50-d8_4xb4-40k_btcv-512x512.py',
                 'linear_r50_4xb4-20k_btcv-512x512.py',
                 'deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_frac10.py',
                 'fcn_r18-d8_1xb2-20it_btcv-phantom.py'):
        assert must in names
    # every config parses; models of one per family are built (R50 builds
    # take seconds)
    built = set()
    for path in all_configs():
        cfg = Config.fromfile(path)
        assert cfg.default_scope == 'medssl'
        assert cfg.val_evaluator['type'] == 'VolumeDiceMetric'
        name = osp.basename(path)
        family = (name.split('_')[0], cfg.model.backbone.type,
                  cfg.model.backbone.depth)
        bb = cfg.model.backbone
        if 'frac' in name:  # compatibility names of the volume-count configs
            frac = int(name[:-3].rsplit('frac', 1)[1])
            assert cfg.train_dataloader.dataset.num_cases == {
                1: 1, 10: 2, 25: 5}[frac]
        if family in built and not name.startswith('linear'):
            continue
        built.add(family)
        model = MODELS.build(cfg.model)
        assert bb.in_channels == 1
        if 'r50' in osp.basename(path):
            assert bb.depth == 50 and tuple(bb.dilations) == (1, 1, 2, 4)
            assert tuple(bb.strides) == (1, 2, 1, 1)
        if osp.basename(path).startswith('linear'):
            assert bb.frozen_stages == 4 and bb.norm_eval
            trainable = [n for n, p in model.named_parameters()
                         if p.requires_grad]
            assert trainable and all(
                n.startswith('decode_head.conv_seg') for n in trainable)
        if path.endswith('_ssl.py') or '_ssl_' in path:
            assert bb.init_cfg['type'] == 'VerifiedPretrained'
            assert bb.init_cfg['prefix'] == 'backbone.'


def test_label_fraction_selects_whole_volumes(btcv_slices_root):
    cfg = Config.fromfile(
        BTCV / 'deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_1vol.py')
    ds_cfg = cfg.train_dataloader.dataset
    ds_cfg.data_root = btcv_slices_root
    all_cfg = ds_cfg.copy()
    all_cfg.num_cases = None
    full = infos(DATASETS.build(all_cfg))
    n_cases = len({d['case'] for d in full})
    assert n_cases >= 2
    picks = []
    for seed in (0, 0, 1, 2, 3):
        ds_cfg.fraction_seed = seed
        ds = infos(DATASETS.build(ds_cfg))
        cases = sorted({d['case'] for d in ds})
        assert len(cases) == 1  # the config's volume count
        # whole volumes: every slice of a chosen case is kept
        for c in cases:
            assert sum(d['case'] == c for d in ds) == sum(
                d['case'] == c for d in full)
        picks.append(tuple(cases))
    assert picks[0] == picks[1]  # deterministic per seed
    assert len(set(picks)) > 1  # the seed matters


@pytest.mark.slow
def test_phantom_finetune_then_test(btcv_slices_root, tmp_path):
    """SSL checkpoint -> linear probe (frozen, pretrained) via tools/train.py
    -> tools/test.py: weights really loaded, per-organ Dice printed, JSON."""
    ssl = ssl_checkpoint(tmp_path / 'ssl.pth')
    config = BTCV / 'linear_r18_1xb2-20it_btcv-phantom.py'
    work = tmp_path / 'train'
    tool_main('train')([
        str(config), '--work-dir', str(work), '--cfg-options',
        *data_root_opts(btcv_slices_root), 'train_cfg.max_iters=3',
        'train_cfg.val_interval=100', 'default_hooks.checkpoint.interval=3',
        'model.backbone.init_cfg.type=VerifiedPretrained',
        f'model.backbone.init_cfg.checkpoint={tmp_path / "ssl.pth"}',
        'model.backbone.init_cfg.prefix=backbone.'])
    ckpt = work / 'iter_3.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu',
                       weights_only=False)['state_dict']
    # frozen + pretrained: the fine-tuned backbone IS the SSL backbone
    for k in ('backbone.conv1.weight', 'backbone.layer4.1.conv2.weight',
              'backbone.bn1.running_mean', 'backbone.layer3.0.bn1.weight'):
        assert torch.equal(state[k], ssl[k]), k

    test_work = tmp_path / 'test'
    out = run(['tools/test.py', config, ckpt, '--work-dir', test_work,
               '--out', tmp_path / 'pred', '--cfg-options',
               *data_root_opts(btcv_slices_root)])
    assert 'per-organ 3D Dice' in out
    for organ in ('spleen', 'liver', 'left adrenal gland'):
        assert organ in out
    res = json.loads((test_work / 'volume_dice.json').read_text())
    # tools/test.py evaluates the held-out test split, with HD95
    val_cases = open(osp.join(btcv_slices_root, 'splits',
                              'test_cases.txt')).read().split()
    assert sorted(res['per_case']) == sorted(val_cases)
    assert 0 <= res['metrics']['mDice'] <= 100
    assert 'mHD95' in res['metrics'] and 'missed_organs' in res['metrics']
    n_val = len(open(osp.join(btcv_slices_root, 'splits',
                              'test.txt')).read().split())
    assert len(list((tmp_path / 'pred').glob('*.png'))) == n_val

    # the same test split over 2 CPU processes (gloo) gives the same table
    dist_work = tmp_path / 'dist_test'
    env = dict(os.environ, OMP_NUM_THREADS='1',
               PORT=str(29600 + os.getpid() % 1000),
               PATH=osp.dirname(sys.executable) + os.pathsep +
               os.environ['PATH'])
    r = subprocess.run(
        ['bash', 'tools/dist_test.sh', str(config), str(ckpt), '2',
         '--work-dir', str(dist_work), '--cfg-options',
         *data_root_opts(btcv_slices_root)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    dist_res = json.loads((dist_work / 'volume_dice.json').read_text())
    assert dist_res['per_case'] == res['per_case']
    assert dist_res['metrics'] == pytest.approx(res['metrics'], nan_ok=True)


def test_mismatched_pretrained_fails(tmp_path):
    """A ResNet-18 SSL checkpoint in an R50 config must not silently
    random-init: ``init_weights`` (what the Runner calls) raises."""
    ssl_checkpoint(tmp_path / 'ssl.pth')
    cfg = Config.fromfile(BTCV / 'fcn_r18-d8_1xb2-20it_btcv-phantom_ssl.py')
    cfg.model.backbone.depth = 50
    cfg.model.backbone.init_cfg.checkpoint = str(tmp_path / 'ssl.pth')
    cfg.model.decode_head.in_channels = 2048
    cfg.model.auxiliary_head.in_channels = 1024
    model = MODELS.build(cfg.model)
    with pytest.raises(ValueError, match='do not match the model'):
        model.init_weights()
    # the matching depth loads
    cfg.model.backbone.depth = 18
    cfg.model.decode_head.in_channels = 512
    cfg.model.auxiliary_head.in_channels = 256
    MODELS.build(cfg.model).init_weights()
    # whitened variant inside the full segmentor: the raw SSL checkpoint's
    # decorrelation is folded; without a checkpoint init_weights refuses
    cfg.model.backbone.type = 'WhitenedResNet'
    model = MODELS.build(cfg.model)
    model.init_weights()
    assert model.backbone.whitening.is_loaded()
    torch.testing.assert_close(model.backbone.whitening.weight[:, :, 0, 0],
                               torch.eye(512))
    cfg.model.backbone.init_cfg = None
    with pytest.raises(RuntimeError, match='whitening'):
        MODELS.build(cfg.model).init_weights()
