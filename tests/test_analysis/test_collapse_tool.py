"""tools/analysis_tools/collapse.py on a tiny MoCo + 2 checkpoints."""
import json

import pytest
import torch
from tool_scripts import load_tool

TINY_MOCO = """
default_scope = 'medssl'
crop_size = 32
model = dict(
    type='MoCo', queue_len=16, feat_dim=16, momentum=0.99,
    data_preprocessor=dict(type='SelfSupDataPreprocessor', mean=[0.5],
                           std=[0.25], bgr_to_rgb=False),
    backbone=dict(type='ResNet', depth=18, in_channels=1, base_channels=8,
                  stem_channels=8, out_indices=[4], norm_cfg=dict(type='BN')),
    neck=dict(type='MoCoV2Neck', in_channels=64, hid_channels=32,
              out_channels=16, with_avg_pool=True),
    head=dict(type='ContrastiveHead',
              loss=dict(type='mmcls.CrossEntropyLoss'), temperature=0.2))
view = [dict(type='RandomResizedCropWithParams', size=crop_size,
             scale=(0.3, 1.)),
        dict(type='RandomFlipWithParams', prob=0.5)]
train_dataloader = dict(
    batch_size=4,
    dataset=dict(
        type='CTSliceDataset', data_root='UNSET',
        ann_file='splits/pretrain.txt', data_prefix=dict(img_path='img_dir'),
        pipeline=[
            dict(type='LoadCTSlice'),
            dict(type='HUWindow', windows=[(-175, 250)]),
            dict(type='MultiViewWithParams', num_views=2, transforms=[view]),
            dict(type='PackSelfSupInputs', meta_keys=['img_path']),
        ]))
"""


@pytest.fixture
def tiny_moco(tmp_path):
    from mmengine.config import Config

    from medssl.analysis.embeddings import build_ssl_model
    cfg_path = tmp_path / 'tiny_moco.py'
    cfg_path.write_text(TINY_MOCO)
    cfg = Config.fromfile(str(cfg_path))
    ckpts = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        model = build_ssl_model(cfg)
        path = tmp_path / f'epoch_{seed + 1}.pth'
        torch.save(dict(state_dict=model.state_dict(), meta=dict()), str(path))
        ckpts.append(str(path))
    return str(cfg_path), ckpts, cfg


def test_collapse_tool_writes_json_and_png(tiny_moco, abdomen1k_slices_root,
                                           tmp_path):
    cfg_path, ckpts, _ = tiny_moco
    tool = load_tool('collapse')
    out = tmp_path / 'out'
    tool.main([
        cfg_path, *ckpts, '--labels', 'first', 'second', '--data-root',
        abdomen1k_slices_root, '--num-samples', '12', '--batch-size', '5',
        '--alignment', '--device', 'cpu', '--out-dir',
        str(out)
    ])
    report = json.loads((out / 'collapse.json').read_text())
    assert list(report) == ['first', 'second']
    for name, ckpt in zip(report, ckpts):
        assert report[name]['checkpoint'] == ckpt
        emb = report[name]['embeddings']
        assert set(emb) == {'backbone', 'projector'}  # no decorrelation
        assert emb['backbone']['dim'] == 64 and emb['projector']['dim'] == 16
        for m in emb.values():
            assert m['num_samples'] == 12
            assert len(m['spectrum']) == m['dim']
            assert m['spectrum'] == sorted(m['spectrum'], reverse=True)
            # 12 samples -> centred covariance rank <= 11
            assert all(v < 1e-9 for v in m['spectrum'][11:])
            assert 1. <= m['effective_rank'] <= 11.
            assert 1. <= m['rankme'] <= 12.
            assert m['alignment'] >= 0. and m['uniformity'] <= 0.
    # the two checkpoints differ -> different spectra
    assert report['first']['embeddings']['projector']['spectrum'] != \
        report['second']['embeddings']['projector']['spectrum']
    assert (out / 'collapse.png').stat().st_size > 5000


def test_embeddings_with_decorrelation_module(tiny_moco):
    """A model with a ``decorrelation`` attribute gets a third embedding
    type, and the projector then sees the decorrelated map."""
    from medssl.analysis.embeddings import build_ssl_model, model_embeddings
    _, _, cfg = tiny_moco
    model = build_ssl_model(cfg).eval()

    class Scale(torch.nn.Module):

        def forward(self, feats):
            return tuple(f * 2. for f in feats)

    x = torch.rand(6, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    plain = model_embeddings(model, x)
    model.decorrelation = Scale()
    out = model_embeddings(model, x)
    assert list(out) == ['backbone', 'decorrelated', 'projector']
    torch.testing.assert_close(out['backbone'], plain['backbone'])
    torch.testing.assert_close(out['decorrelated'], 2 * plain['backbone'])
    expected = model.neck(((model.backbone(x)[-1] * 2.), ))[0]
    torch.testing.assert_close(out['projector'], expected)


def test_checkpoint_of_another_config_is_an_error(tiny_moco, tmp_path):
    """A backbone/neck that does not match the config must not be analysed
    as half-random weights."""
    from medssl.analysis.embeddings import build_ssl_model, load_weights
    _, ckpts, cfg = tiny_moco
    model = build_ssl_model(cfg)
    load_weights(model, ckpts[1])  # matching: loads
    ref = torch.load(ckpts[1], map_location='cpu', weights_only=False)
    torch.testing.assert_close(model.backbone.conv1.weight,
                               ref['state_dict']['backbone.conv1.weight'])
    bad = dict(ref['state_dict'])
    bad['neck.mlp.0.weight'] = torch.zeros(5, 5)
    path = tmp_path / 'other.pth'
    torch.save(dict(state_dict=bad), str(path))
    with pytest.raises(ValueError, match='neck'):
        load_weights(build_ssl_model(cfg), str(path))


def test_random_baseline_is_seeded(tiny_moco, abdomen1k_slices_root,
                                   tmp_path):
    """``random`` twice with --seed 0 gives identical numbers; another seed
    gives another random network."""
    cfg_path, _, _ = tiny_moco
    tool = load_tool('collapse')
    ranks = []
    for i, seed in enumerate(('0', '0', '1')):
        out = tmp_path / f'out{i}'
        tool.main([
            cfg_path, 'random', '--data-root', abdomen1k_slices_root,
            '--num-samples', '12', '--batch-size', '6', '--device', 'cpu',
            '--seed', seed, '--out-dir', str(out)
        ])
        report = json.loads((out / 'collapse.json').read_text())
        ranks.append(report['random']['embeddings']['projector'])
    assert ranks[0]['spectrum'] == ranks[1]['spectrum']
    assert ranks[0]['effective_rank'] == ranks[1]['effective_rank']
    assert ranks[0]['spectrum'] != ranks[2]['spectrum']
