"""Collapse metrics against closed forms / hand computations."""
import math

import numpy as np
import pytest
import torch

from medssl.analysis.spectrum import (alignment, collapse_metrics,
                                      covariance_spectrum, effective_rank,
                                      effective_rank_from_values,
                                      embedding_spectrum, normalized_std,
                                      rankme, uniformity)


def _orthonormal(d, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    return q


def test_effective_rank_from_values_by_hand():
    # p = (0.5, 0.25, 0.25): H = 0.5 ln2 + 2 * 0.25 ln4 = 1.5 ln2
    assert effective_rank_from_values([2., 1., 1.]) == pytest.approx(math.exp(
        1.5 * math.log(2)),
                                                                     rel=1e-12)
    assert effective_rank_from_values([3., 3., 3., 0., 0.]) == pytest.approx(3)
    assert effective_rank_from_values([1., 0.]) == pytest.approx(1.)
    assert effective_rank_from_values([0., 0.]) == 0.


def test_covariance_spectrum_known_eigenvalues():
    """Exactly whitened samples rotated by Q: cov = Q diag(lam) Q^T."""
    d, n = 6, 4000
    lam = np.array([4., 2., 1., .5, .25, .125])
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, d, generator=g, dtype=torch.float64)
    x = x - x.mean(0)
    # make the sample covariance exactly the identity
    c = x.T @ x / n
    w = torch.linalg.cholesky(torch.linalg.inv(c))
    x = x @ w
    z = x * torch.from_numpy(np.sqrt(lam)) @ _orthonormal(d).T
    spec = covariance_spectrum(z)
    np.testing.assert_allclose(spec.numpy(), lam, rtol=1e-9)
    p = lam / lam.sum()
    expected = math.exp(-(p * np.log(p)).sum())
    assert effective_rank_from_values(spec) == pytest.approx(expected,
                                                             rel=1e-9)
    # the N < D path (Gram matrix) gives the same non-zero values + zeros
    small = z[:4]
    ref = torch.linalg.eigvalsh(
        (small - small.mean(0)).T @ (small - small.mean(0)) / 4).flip(0)
    got = covariance_spectrum(small)
    np.testing.assert_allclose(got[:3].numpy(), ref[:3].numpy(), rtol=1e-8)
    assert torch.all(got[3:].abs() < 1e-12)


def test_collapsed_rank_k_embeddings():
    """Rows = +-e_i (i < k) of a rotated basis, balanced: after L2 norm the
    centred covariance is diag(1/k,...,1/k,0,...), so effective rank = k."""
    d, k = 32, 5
    q = _orthonormal(d, seed=3)
    rows = []
    for i in range(k):
        rows += [q[:, i], -q[:, i]] * 10
    z = torch.stack(rows) * 7.0  # the scale is removed by the L2 norm
    spec = embedding_spectrum(z)
    assert spec.shape == (d, )
    np.testing.assert_allclose(spec[:k].numpy(), np.full(k, 1. / k), rtol=1e-9)
    assert torch.all(spec[k:].abs() < 1e-12)
    assert effective_rank(z) == pytest.approx(k, rel=1e-9)
    # RankMe: the embedding matrix has k equal singular values too
    assert rankme(z, eps=0.) == pytest.approx(k, rel=1e-9)
    # the paper's eps=1e-7 on the 27 zero values adds ~27 * 1.6e-6 nats
    assert rankme(z) == pytest.approx(k, rel=1e-3)
    # normalised std: per dim var = sum_i q_ji^2 / k -> mean over dims of std
    std = np.sqrt(
        (q[:, :k].numpy()**2).sum(1) / k * len(rows) / (len(rows) - 1))
    assert normalized_std(z) == pytest.approx(std.mean(), rel=1e-9)


def test_rankme_known_matrix():
    # singular values (3, 1): p = (.75, .25) (+1e-7 each)
    z = torch.tensor([[3., 0.], [0., 1.], [0., 0.]])
    p = np.array([.75, .25]) + 1e-7
    assert rankme(z) == pytest.approx(math.exp(-(p * np.log(p)).sum()),
                                      rel=1e-9)
    # RankMe works on the raw matrix; identity-like -> full rank
    assert rankme(torch.eye(8)) == pytest.approx(8., rel=1e-5)


def test_alignment_uniformity_by_hand():
    z1 = torch.tensor([[1., 0.], [0., 1.]])
    z2 = torch.tensor([[0., 2.], [0., 1.]])  # normalised: (0,1), (0,1)
    # squared distances 2 and 0 -> mean 1
    assert alignment(z1, z2) == pytest.approx(1.)
    # three points on the circle at 120 deg: squared distance 3 each
    ang = torch.tensor([0., 2 * math.pi / 3, 4 * math.pi / 3])
    z = torch.stack([ang.cos(), ang.sin()], 1)
    assert uniformity(z) == pytest.approx(-6., abs=1e-9)
    # fully collapsed -> uniformity 0, std 0
    zc = torch.ones(10, 4)
    assert uniformity(zc) == pytest.approx(0.)
    assert normalized_std(zc) == pytest.approx(0.)


def test_collapse_metrics_keys_and_reference():
    z = torch.randn(200, 16, generator=torch.Generator().manual_seed(0))
    m = collapse_metrics(z, z + 0.01)
    assert set(m) >= {
        'dim', 'num_samples', 'effective_rank', 'rankme', 'normalized_std',
        'std_reference', 'uniformity', 'alignment', 'spectrum'
    }
    assert m['dim'] == 16 and len(m['spectrum']) == 16
    assert m['spectrum'] == sorted(m['spectrum'], reverse=True)
    assert 12 < m['effective_rank'] <= 16
    # isotropic Gaussian: std of normalised embeddings ~ 1/sqrt(D)
    assert m['normalized_std'] == pytest.approx(m['std_reference'], rel=0.05)
    assert m['alignment'] < 1e-3
