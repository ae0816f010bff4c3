"""VerifiedPretrained transfer options: rescale (same function, conv
weights at their from-scratch norm) and exclude (stages left initialised)."""
import torch

from medssl.models.backbones.verified_pretrained import (init_norm,
                                                         verify_and_load)
from medssl.registry import MODELS


def ResNet(**kw):
    return MODELS.build(dict(type='mmseg.ResNet', **kw))


def _resnet():
    return ResNet(depth=18, in_channels=1, strides=(1, 2, 1, 1),
                  dilations=(1, 1, 2, 4))


def _pretrained_state(seed=0):
    torch.manual_seed(seed)
    src = _resnet()
    src.train()
    with torch.no_grad():  # realistic running statistics
        for _ in range(3):
            src(torch.randn(4, 1, 32, 32))
    state = {f'backbone.{k}': v.clone() for k, v in src.state_dict().items()}
    for k, v in state.items():  # weights that grew in pretraining
        if k.endswith('conv1.weight') or k.endswith('downsample.0.weight'):
            state[k] = v * 5.0
    return state


def test_rescale_keeps_the_function_and_sets_init_norms():
    state = _pretrained_state()
    plain, scaled = _resnet(), _resnet()
    verify_and_load(plain, state, 'backbone.')
    verify_and_load(scaled, state, 'backbone.', rescale=True)
    for name, w in scaled.state_dict().items():
        if name.endswith('.weight') and w.dim() == 4:
            assert abs(float(w.norm()) - init_norm(w)) < 1e-3 * init_norm(w)
    x = torch.randn(2, 1, 32, 32)
    for train in (True, False):
        plain.train(train)
        scaled.train(train)
        with torch.no_grad():
            for a, b in zip(plain(x), scaled(x)):
                # equal up to the effect of BN eps on the rescaled variances
                assert torch.allclose(a, b, rtol=1e-2, atol=1e-2), train
    # the stem really was rescaled (5x its pretrained size would stay)
    assert float(plain.conv1.weight.norm()) > 3 * init_norm(
        plain.conv1.weight)


def test_exclude_leaves_stages_initialised():
    state = _pretrained_state()
    torch.manual_seed(1)
    model = _resnet()
    before = model.layer4[0].conv1.weight.clone()
    out = verify_and_load(model, state, 'backbone.', exclude=['layer4.'])
    assert torch.equal(model.layer4[0].conv1.weight, before)
    assert torch.equal(model.layer3[0].conv1.weight,
                       state['backbone.layer3.0.conv1.weight'])
    assert not [k for k in out['missing'] if k.startswith('layer4.')]
