"""Tests of EffectiveRankLoss (values by hand, gradients)."""
import math

import pytest
import torch

from medssl.analysis.spectrum import effective_rank
from medssl.models.losses import EffectiveRankLoss, spectral_entropy
from medssl.registry import MODELS


def test_hand_computed_values():
    loss = MODELS.build(dict(type='EffectiveRankLoss'))
    # Two orthogonal axes, equal variance: flat spectrum -> loss 0.
    flat = torch.tensor([[1., 0.], [-1., 0.], [0., 1.], [0., -1.]])
    assert loss(flat).item() == pytest.approx(0.0, abs=1e-6)
    # Everything on one axis: rank one -> loss 1.
    line = torch.tensor([[1., 0.], [-1., 0.], [1., 0.], [-1., 0.]])
    assert loss(line).item() == pytest.approx(1.0, abs=1e-6)
    # Variances 3:1 along two axes (N = 8 rows, D = 2): p = (3/4, 1/4).
    a, b = math.sqrt(0.75), math.sqrt(0.25)
    z = torch.tensor([[a, b], [-a, -b], [a, -b], [-a, b]] * 2)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert loss(z).item() == pytest.approx(1 - h / math.log(2), abs=1e-6)


def test_entropy_is_log_of_the_collapse_tools_effective_rank():
    z = torch.randn(32, 64) @ torch.randn(64, 64)
    h = spectral_entropy(torch.nn.functional.normalize(z, dim=1))
    assert math.exp(h.item()) == pytest.approx(effective_rank(z), rel=1e-6)


def test_feature_maps_are_pooled_and_weighted():
    feat = torch.randn(6, 8, 3, 3)
    base = EffectiveRankLoss()(feat)
    assert EffectiveRankLoss(loss_weight=0.5)(feat).item() == \
        pytest.approx(0.5 * base.item(), rel=1e-6)
    assert base.item() == pytest.approx(
        EffectiveRankLoss()(feat.mean((2, 3))).item(), rel=1e-6)


def test_gradient_finite_on_collapsed_and_repeated_spectra():
    for z in (torch.ones(8, 16) + 1e-9 * torch.randn(8, 16),
              torch.eye(16)[:8].clone()):
        z.requires_grad_(True)
        EffectiveRankLoss()(z).backward()
        assert torch.isfinite(z.grad).all()


def test_descent_raises_effective_rank():
    torch.manual_seed(0)
    z = (torch.randn(32, 1) @ torch.randn(1, 64) +
         0.05 * torch.randn(32, 64)).requires_grad_(True)
    before = effective_rank(z.detach())
    opt = torch.optim.SGD([z], lr=50.0)
    for _ in range(50):
        opt.zero_grad()
        EffectiveRankLoss()(z).backward()
        opt.step()
    assert effective_rank(z.detach()) > 10 * before  # 1.1 -> 14.6


def test_old_registry_name_builds_the_same_loss():
    old = MODELS.build(dict(type='SpectralDecorrelationLoss', loss_weight=0.5))
    assert type(old) is EffectiveRankLoss and old.loss_weight == 0.5
