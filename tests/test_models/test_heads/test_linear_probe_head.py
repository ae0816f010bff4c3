"""LinearProbeHead: affine-free BN + 1x1 conv; the probe config keeps the
backbone frozen."""
import os.path as osp

import pytest
import torch
from mmengine.config import Config

from medssl.registry import MODELS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.dirname(
    osp.abspath(__file__)))))
PHANTOM_PROBE = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation',
                         'btcv', 'linear_r18_1xb2-20it_btcv-phantom.py')


def build_head(**kw):
    cfg = dict(type='LinearProbeHead', in_channels=8, num_classes=3,
               in_index=0)
    cfg.update(kw)
    return MODELS.build(cfg)


def test_shapes_parameters_and_scale_invariance():
    head = build_head()
    assert isinstance(head.bn, torch.nn.BatchNorm2d)
    assert not head.bn.affine  # no learnable scale/shift in the probe
    # the only learnable parameters: one 1x1 conv (K x C + K)
    assert {n: tuple(p.shape) for n, p in head.named_parameters()} == {
        'conv_seg.weight': (3, 8, 1, 1), 'conv_seg.bias': (3, )}
    x = torch.randn(4, 8, 5, 6, generator=torch.Generator().manual_seed(0))
    head.train()
    out = head((x, ))
    assert out.shape == (4, 3, 5, 6)
    # batch statistics: a per-channel rescaling/shift of the frozen features
    # does not change the probe's input (what a bare conv would be
    # sensitive to)
    scale = torch.linspace(0.5, 100., 8).view(1, 8, 1, 1)
    torch.testing.assert_close(head((x * scale + 3., )), out, atol=1e-3,
                               rtol=1e-3)
    # eval: a fixed per-channel affine map, i.e. still linear in x
    head.eval()
    y0, y1, y2 = head((x[:1], )), head((x[1:2], )), head(
        (x[:1] + x[1:2], ))
    b = head((torch.zeros_like(x[:1]), ))
    torch.testing.assert_close(y2 - b, (y0 - b) + (y1 - b), atol=1e-4,
                               rtol=1e-4)


def test_norm_is_configurable_and_channels_checked():
    head = build_head(norm_cfg=dict(type='SyncBN'))
    assert isinstance(head.bn, torch.nn.SyncBatchNorm)
    assert not head.bn.affine
    with pytest.raises(ValueError, match='channels must equal'):
        build_head(channels=4)
    with pytest.raises(ValueError, match='norm_cfg'):
        build_head(norm_cfg=None)


def test_probe_config_trains_only_the_head():
    """Two SGD steps at lr 0.1 on the phantom probe config: every backbone
    weight and BN running statistic stays exactly as it was; the head's
    classifier and BN statistics move."""
    from mmengine.optim import build_optim_wrapper
    from mmengine.structures import PixelData
    from mmseg.structures import SegDataSample
    cfg = Config.fromfile(PHANTOM_PROBE)
    assert cfg.model.decode_head.type == 'LinearProbeHead'
    assert cfg.model.decode_head.norm_cfg.type == 'BN'
    torch.manual_seed(0)
    model = MODELS.build(cfg.model)
    model.init_weights()
    model.train()
    assert not any(p.requires_grad for p in model.backbone.parameters())
    assert all(not m.training for m in model.backbone.modules()
               if isinstance(m, torch.nn.modules.batchnorm._BatchNorm))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    optim = build_optim_wrapper(model, cfg.optim_wrapper)
    g = torch.Generator().manual_seed(0)
    for _ in range(2):
        samples = []
        for _ in range(2):
            ds = SegDataSample(metainfo=dict(img_shape=(64, 64),
                                             ori_shape=(64, 64),
                                             pad_shape=(64, 64)))
            ds.gt_sem_seg = PixelData(
                data=torch.randint(0, 14, (1, 64, 64), generator=g))
            samples.append(ds)
        data = dict(inputs=[torch.rand(1, 64, 64, generator=g)
                            for _ in range(2)], data_samples=samples)
        model.train_step(data, optim)
    after = model.state_dict()
    moved = {k for k in before if not torch.equal(before[k], after[k])}
    assert moved == {
        'decode_head.conv_seg.weight', 'decode_head.conv_seg.bias',
        'decode_head.bn.running_mean', 'decode_head.bn.running_var',
        'decode_head.bn.num_batches_tracked'
    }
