"""Tests of medssl.models.utils.whitening (grouped ZCA, guarded eigh)."""
import torch

from medssl.models.utils.whitening import (EighInvSqrt,
                                           apply_grouped_whitening,
                                           eigh_inv_sqrt, grouped_moments,
                                           moments_to_mean_cov)


def _zca(x, num_groups, eps):
    """mean (C,) and grouped W (G, c, c) of X (M, C), as the neck computes
    them on one process."""
    mean, cov = moments_to_mean_cov(*grouped_moments(x, num_groups), eps)
    return mean, eigh_inv_sqrt(cov)


def _correlated(m, c, seed=0):
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(c, c, generator=g, dtype=torch.float64) / c**0.5
    mix = mix + torch.eye(c, dtype=torch.float64)
    return torch.randn(m, c, generator=g, dtype=torch.float64) @ mix + 3.0


def _group_cov(y, g):
    m, c = y.shape
    yc = (y - y.mean(0)).view(m, g, c // g)
    return torch.einsum('mgi,mgj->gij', yc, yc) / m


def test_whitened_covariance_is_identity():
    x = _correlated(2000, 32)
    mean, w = _zca(x, num_groups=4, eps=1e-6)
    assert w.shape == (4, 8, 8)
    y = apply_grouped_whitening(x, mean, w)
    cov = _group_cov(y, 4)
    err = (cov - torch.eye(8, dtype=cov.dtype)).abs().max().item()
    assert err < 1e-3, err
    # ZCA: W is symmetric.
    assert torch.allclose(w, w.transpose(-1, -2), atol=1e-8)


def test_eigh_inv_sqrt_matches_matrix_power():
    a = torch.randn(3, 6, 6, dtype=torch.float64)
    s = a @ a.transpose(-1, -2) + 0.5 * torch.eye(6, dtype=torch.float64)
    w = eigh_inv_sqrt(s)
    ident = w @ s @ w
    assert torch.allclose(ident, torch.eye(6, dtype=torch.float64).expand(3, 6, 6),
                          atol=1e-10)


def test_gradcheck_guarded_eigh():
    torch.manual_seed(0)
    a = torch.randn(2, 4, 4, dtype=torch.float64)
    s = (a @ a.transpose(-1, -2) + torch.eye(4, dtype=torch.float64))
    s.requires_grad_(True)

    def f(m):
        # gradcheck perturbs single entries; symmetrise so the function is
        # defined on all of R^{c x c}.
        return EighInvSqrt.apply(0.5 * (m + m.transpose(-1, -2)), 1e-12)

    assert torch.autograd.gradcheck(f, (s, ), eps=1e-6, atol=1e-6)


def test_guarded_backward_matches_autograd_eigh():
    a = torch.randn(5, 5, dtype=torch.float64)
    s = a @ a.t() + torch.eye(5, dtype=torch.float64)
    g = torch.randn(5, 5, dtype=torch.float64)
    s1 = s.clone().requires_grad_(True)
    (EighInvSqrt.apply(s1, 1e-12) * g).sum().backward()
    s2 = s.clone().requires_grad_(True)
    lam, u = torch.linalg.eigh(s2)
    ((u @ torch.diag(lam.rsqrt()) @ u.t()) * g).sum().backward()
    assert torch.allclose(s1.grad, s2.grad, atol=1e-8)


def test_gradient_finite_for_repeated_eigenvalues():
    # Exactly repeated eigenvalues: plain autograd eigh gives inf/nan.
    s = torch.diag(torch.tensor([2.0, 2.0, 2.0, 1.0],
                                dtype=torch.float64)).requires_grad_(True)
    w = eigh_inv_sqrt(s)
    (w * torch.randn(4, 4, dtype=torch.float64)).sum().backward()
    assert torch.isfinite(s.grad).all()
    s2 = torch.eye(4, dtype=torch.float64).requires_grad_(True)
    lam, u = torch.linalg.eigh(s2)
    ((u @ torch.diag(lam.rsqrt()) @ u.t()) * torch.ones(4, 4)).sum().backward()
    assert not torch.isfinite(s2.grad).all()  # what the guard avoids


def test_gradient_finite_rank_deficient():
    # M < c and a duplicated channel: singular covariance (only eps*I).
    x = torch.randn(5, 16, dtype=torch.float64)
    x[:, 1] = x[:, 0]
    x.requires_grad_(True)
    mean, w = _zca(x, num_groups=2, eps=1e-5)
    y = apply_grouped_whitening(x, mean, w)
    (y * torch.randn_like(y)).sum().backward()
    assert torch.isfinite(x.grad).all()
    assert x.grad.abs().sum() > 0


def test_moments_are_additive():
    x = torch.randn(40, 12)
    s1 = grouped_moments(x[:15], 3)
    s2 = grouped_moments(x[15:], 3)
    sa = grouped_moments(x, 3)
    for a, b, c in zip(s1, s2, sa):
        assert torch.allclose(a + b, c, atol=1e-10)
    mean, cov = moments_to_mean_cov(*sa, eps=0.0)
    ref = torch.cov(x.double().t(), correction=0)
    assert torch.allclose(cov[1], ref[4:8, 4:8], atol=1e-10)
    assert torch.allclose(mean, x.double().mean(0), atol=1e-12)
