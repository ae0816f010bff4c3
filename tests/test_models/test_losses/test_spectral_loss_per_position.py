"""The per-position form of the spectral (effective-rank) loss."""
import math

import pytest
import torch

from medssl.models.losses import spectral_entropy
from medssl.registry import MODELS


def test_per_position_sees_what_pooling_averages_away():
    # Every image has the same pooled vector (0, 0) -> the pooled batch is
    # rank 0 (loss 1); its positions spread over two axes with variances
    # 3:1 (after L2 normalisation the rows are unit vectors).
    a, b = math.sqrt(0.75), math.sqrt(0.25)
    pos = torch.tensor([[a, b], [-a, -b], [a, -b], [-a, b]])  # 4 positions
    feat = pos.t().reshape(1, 2, 2, 2).repeat(4, 1, 1, 1)  # N=4, C=2, 2x2
    pooled = MODELS.build(dict(type='SpectralDecorrelationLoss'))
    per_pos = MODELS.build(dict(type='SpectralDecorrelationLoss',
                                per_position=True))
    assert pooled(feat).item() == pytest.approx(1.0, abs=1e-6)
    h = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    # 16 samples, D = 2: h_max = log min(15, 2)
    assert per_pos(feat).item() == pytest.approx(1 - h / math.log(2),
                                                 abs=1e-6)


def test_entropy_same_from_gram_and_covariance():
    # N > D takes the D x D covariance, N < D the N x N Gram: same spectrum.
    torch.manual_seed(0)
    for n, d in ((40, 5), (5, 40)):
        z = (torch.randn(n, d) @ torch.randn(d, d)).double()
        zc = z - z.mean(0)
        # numpy's covariance spectrum as the reference, both shapes
        lam = torch.from_numpy(__import__('numpy').linalg.eigvalsh(
            (zc.t() @ zc / n).numpy())).clamp_min(0)
        p = lam / lam.sum()
        expected = -(p * torch.log(p.clamp_min(1e-12))).sum()
        assert spectral_entropy(z).item() == pytest.approx(expected.item(),
                                                           rel=1e-9)


def test_per_position_gradient_reaches_the_map():
    feat = torch.randn(2, 8, 3, 3, requires_grad=True)
    loss = MODELS.build(dict(type='SpectralDecorrelationLoss',
                             per_position=True))(feat)
    loss.backward()
    assert torch.isfinite(feat.grad).all() and feat.grad.abs().sum() > 0
