"""WhitenedResNet, VerifiedPretrained and the selfsup2mmseg converter."""
from pathlib import Path

import pytest
import torch

from medssl.apis.model_converters import convert_file, convert_selfsup_to_mmseg
from medssl.models.backbones import fold_decorrelation
from medssl.registry import MODELS
from medssl.utils import register_all_modules

ROOT = Path(__file__).resolve().parents[3]
register_all_modules()

G, C = 4, 512  # ResNet-18 last stage: 512 channels, 4 groups of 128


def ssl_state_dict(seed=0, depth=18):
    """A MedMoCo-like checkpoint: backbone (mmselfsup ResNet), momentum
    encoder, neck, queue and decorrelation buffers."""
    torch.manual_seed(seed)
    bb = MODELS.build(dict(type='ResNet', depth=depth, in_channels=1))
    # non-trivial BN statistics so they are checked too
    for m in bb.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-1, 1)
            m.running_var.uniform_(0.5, 2)
    c = 512 if depth == 18 else 2048
    a = torch.randn(G, c // G, c // G) * 0.1
    whitening = a @ a.transpose(1, 2) + torch.eye(c // G)  # SPD per group
    state = {f'backbone.{k}': v for k, v in bb.state_dict().items()}
    state.update({f'momentum_encoder.module.backbone.{k}': v.clone()
                  for k, v in bb.state_dict().items()})
    state['neck.mlp.0.weight'] = torch.randn(2048, c)
    state['head.queue'] = torch.randn(128, 16)
    state['decorrelation.running_mean'] = torch.randn(c)
    state['decorrelation.running_whitening'] = whitening
    return dict(meta=dict(epoch=1), state_dict=state)


def seg_backbone_cfg(ckpt=None, whitened=False, depth=18, **kw):
    cfg = dict(type='WhitenedResNet' if whitened else 'mmseg.ResNet',
               depth=depth, in_channels=1, num_stages=4,
               out_indices=(0, 1, 2, 3), dilations=(1, 1, 2, 4),
               strides=(1, 2, 1, 1), **kw)
    if ckpt is not None:
        cfg['init_cfg'] = dict(type='VerifiedPretrained', checkpoint=str(ckpt),
                               prefix='backbone.')
    return cfg


@pytest.fixture(scope='module')
def ckpts(tmp_path_factory):
    d = tmp_path_factory.mktemp('ckpt')
    ssl = ssl_state_dict()
    torch.save(ssl, d / 'ssl.pth')
    info = convert_file(str(d / 'ssl.pth'), str(d / 'seg.pth'))
    assert info['whitening']
    return ssl, d / 'ssl.pth', d / 'seg.pth'


def test_fold_decorrelation_matches_hand():
    torch.manual_seed(1)
    mu = torch.randn(8)
    wm = torch.randn(2, 4, 4)
    weight, bias = fold_decorrelation(mu, wm)
    assert weight.shape == (8, 8, 1, 1) and bias.shape == (8, )
    x = torch.randn(3, 8, 5, 6)
    full = torch.block_diag(*wm)
    expect = torch.einsum('ij,njhw->nihw', full, x - mu[None, :, None, None])
    got = torch.nn.functional.conv2d(x, weight, bias)
    torch.testing.assert_close(got, expect, atol=1e-5, rtol=1e-5)
    # off-diagonal blocks are zero
    assert torch.count_nonzero(weight[:4, 4:]) == 0


def test_converter_keeps_backbone_and_folds(ckpts):
    ssl, _, seg = ckpts
    out = torch.load(seg, map_location='cpu', weights_only=False)
    state = out['state_dict']
    src = ssl['state_dict']
    bb_keys = [k for k in src if k.startswith('backbone.')]
    assert set(state) == set(bb_keys) | {'backbone.whitening.weight',
                                         'backbone.whitening.bias'}
    for k in bb_keys:
        assert torch.equal(state[k], src[k]), k
    assert state['backbone.whitening.weight'].shape == (C, C, 1, 1)
    # in-memory conversion equals the file
    mem = convert_selfsup_to_mmseg(ssl)
    assert torch.equal(mem['backbone.whitening.bias'],
                       state['backbone.whitening.bias'])


@pytest.mark.parametrize('which', ['ssl', 'seg'])
def test_pretrained_loads_identical_backbone(ckpts, which):
    ssl, ssl_path, seg_path = ckpts
    path = ssl_path if which == 'ssl' else seg_path
    bb = MODELS.build(seg_backbone_cfg(path))
    bb.init_weights()
    own = bb.state_dict()
    for k, v in ssl['state_dict'].items():
        if k.startswith('backbone.'):
            assert torch.equal(own[k[len('backbone.'):]], v), k


@pytest.mark.slow
@pytest.mark.parametrize('which', ['ssl', 'seg'])
def test_whitened_resnet_output_equals_hand_whitening(ckpts, which):
    ssl, ssl_path, seg_path = ckpts
    path = ssl_path if which == 'ssl' else seg_path
    wbb = MODELS.build(seg_backbone_cfg(path, whitened=True))
    wbb.init_weights()
    plain = MODELS.build(seg_backbone_cfg(path))
    plain.init_weights()
    assert not any(p.requires_grad for p in wbb.whitening.parameters())
    assert all('whitening' not in n for n, _ in wbb.named_parameters())
    wbb.eval(), plain.eval()
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        outs_w, outs_p = wbb(x), plain(x)
    for a, b in zip(outs_w[:3], outs_p[:3]):
        torch.testing.assert_close(a, b)
    mu = ssl['state_dict']['decorrelation.running_mean']
    wm = torch.block_diag(
        *ssl['state_dict']['decorrelation.running_whitening'])
    feat = outs_p[3]
    expect = torch.einsum('ij,njhw->nihw', wm.double(),
                          (feat - mu[None, :, None, None]).double()).float()
    torch.testing.assert_close(outs_w[3], expect, atol=1e-4, rtol=1e-4)


def test_whitened_resnet_without_whitening_raises(tmp_path, ckpts):
    ssl = ssl_state_dict()
    del ssl['state_dict']['decorrelation.running_mean']
    del ssl['state_dict']['decorrelation.running_whitening']
    torch.save(ssl, tmp_path / 'nowhite.pth')
    bb = MODELS.build(seg_backbone_cfg(tmp_path / 'nowhite.pth',
                                       whitened=True))
    with pytest.raises(ValueError, match='whitening'):
        bb.init_weights()
    # plain mmengine 'Pretrained' init: caught by WhitenedResNet itself
    cfg = seg_backbone_cfg(whitened=True)
    cfg['init_cfg'] = dict(type='Pretrained',
                           checkpoint=str(tmp_path / 'nowhite.pth'),
                           prefix='backbone.')
    bb = MODELS.build(cfg)
    with pytest.raises(RuntimeError, match='whitening'):
        bb.init_weights()
    # never initialised at all: forward refuses
    bb = MODELS.build(seg_backbone_cfg(whitened=True))
    with pytest.raises(RuntimeError, match='whitening'):
        bb(torch.zeros(1, 1, 32, 32))


def test_mismatched_checkpoint_raises(tmp_path, ckpts):
    _, ssl_path, seg_path = ckpts
    # depth mismatch (ResNet-18 weights into ResNet-50): shape mismatches
    bb = MODELS.build(seg_backbone_cfg(seg_path, depth=50))
    with pytest.raises(ValueError, match='do not match'):
        bb.init_weights()
    # in_channels mismatch
    bb = MODELS.build(seg_backbone_cfg(seg_path, **{}) | dict(in_channels=3))
    with pytest.raises(ValueError, match='conv1.weight'):
        bb.init_weights()
    # most keys missing
    sd = torch.load(seg_path, weights_only=False)['state_dict']
    part = {k: v for k, v in sd.items() if 'layer' not in k}
    torch.save(dict(state_dict=part), tmp_path / 'part.pth')
    bb = MODELS.build(seg_backbone_cfg(tmp_path / 'part.pth'))
    with pytest.raises(ValueError, match='missing'):
        bb.init_weights()
    # wrong prefix: nothing matches
    torch.save(dict(state_dict={'encoder.' + k: v for k, v in sd.items()}),
               tmp_path / 'other.pth')
    bb = MODELS.build(seg_backbone_cfg(tmp_path / 'other.pth'))
    with pytest.raises((ValueError, AssertionError)):
        bb.init_weights()


def test_converter_rejects_non_ssl(tmp_path):
    with pytest.raises(ValueError, match='backbone'):
        convert_selfsup_to_mmseg({'state_dict': {'foo.weight': torch.ones(1)}})
