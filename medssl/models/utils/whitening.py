"""ZCA whitening of grouped features (pure torch functions).

Used by :class:`medssl.models.necks.EigenDecorrelationNeck` to implement the
feature decorrelation of Hassanpour et al., "Overcoming Dimensional Collapse
in Self-supervised Contrastive Learning for Medical Image Segmentation",
ISBI 2024 (arXiv 2402.14611): Sigma = U Lambda U^T, W = U Lambda^{-1/2} U^T,
y = W (x - mu).

Channels are split into ``G`` contiguous groups of ``c = C / G`` channels;
each group is whitened independently (block-diagonal W). Groups cut the cost
(G eigh of c x c instead of one of C x C) and keep every Sigma_g full rank when
the number of positions M is small.

S^{-1/2} is computed by float64 ``torch.linalg.eigh`` with a guarded
backward (:class:`EighInvSqrt`). The gradient of a spectral function
F(S) = U f(Lambda) U^T is U (K o (U^T sym(G) U)) U^T with the Loewner
matrix K_ij = (f(l_i) - f(l_j)) / (l_i - l_j), K_ii = f'(l_i). For
f(l) = l^{-1/2} the divided difference has the closed form
K_ij = -1 / (s_i s_j (s_i + s_j)), s = sqrt(l), which is exactly finite for
equal or nearly equal eigenvalues (no 1/(l_i - l_j) is ever formed) and
equals f'(l_i) on the diagonal. (An IterNorm-style Newton-Schulz iteration
was measured against it in benchmarks/pretrain_step.py and removed: at
64 x 32 channels it was no faster than grouped eigh on CPU and left
max|cov - I| = 0.86 at T = 5, against 1e-5.)
"""
from typing import Tuple

import torch

__all__ = [
    'EighInvSqrt', 'eigh_inv_sqrt', 'grouped_moments', 'moments_to_mean_cov',
    'apply_grouped_whitening'
]


def _eigh(sigma: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
    """``torch.linalg.eigh``; on CPU run single-threaded: MKL's threaded
    syevd on a batch of small (c <= ~128) matrices is 5-10x slower than the
    serial one (measured on 2 cores, 64 x 32 x 32, float64), and much worse
    when the cores are oversubscribed."""
    if sigma.device.type != 'cpu' or sigma.shape[-1] > 128:
        return torch.linalg.eigh(sigma)
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return torch.linalg.eigh(sigma)
    finally:
        torch.set_num_threads(n)


class EighInvSqrt(torch.autograd.Function):
    """S^{-1/2} of a batch of SPD matrices (..., c, c) via eigh, with a
    Daleckii-Krein backward that is finite for repeated eigenvalues."""

    @staticmethod
    def forward(ctx, sigma: torch.Tensor, min_eig: float) -> torch.Tensor:
        lam, u = _eigh(sigma)
        # eps*I is already in sigma; the clamp only protects against
        # round-off producing a tiny negative eigenvalue.
        lam = lam.clamp_min(min_eig)
        s = lam.sqrt()
        w = (u * (1.0 / s).unsqueeze(-2)) @ u.transpose(-1, -2)
        ctx.save_for_backward(u, s)
        return w

    @staticmethod
    def backward(ctx, grad_w: torch.Tensor):
        u, s = ctx.saved_tensors
        # W is symmetric by construction, so only sym(G) matters.
        g = 0.5 * (grad_w + grad_w.transpose(-1, -2))
        g_tilde = u.transpose(-1, -2) @ g @ u
        si = s.unsqueeze(-1)
        sj = s.unsqueeze(-2)
        # Closed-form divided difference of l^{-1/2}; equals
        # f'(l) = -l^{-3/2}/2
        # on the diagonal and stays finite when l_i == l_j.
        k = -1.0 / (si * sj * (si + sj))
        grad_sigma = u @ (k * g_tilde) @ u.transpose(-1, -2)
        return grad_sigma, None


def eigh_inv_sqrt(sigma: torch.Tensor, min_eig: float = 1e-12) -> torch.Tensor:
    """Sigma^{-1/2} by eigh in float64 (guarded backward).

    Args:
        sigma: (..., c, c) symmetric positive definite.
        min_eig: clamp on eigenvalues against round-off.

    Returns:
        (..., c, c) in the dtype of ``sigma``.
    """
    out = EighInvSqrt.apply(sigma.double(), min_eig)
    return out.to(sigma.dtype)


def grouped_moments(
        x: torch.Tensor,
        num_groups: int) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Raw first/second moments of grouped features, in float64.

    Sums (not means) so that they can be all-reduced across ranks.

    Args:
        x: (M, C) features.
        num_groups: G, must divide C.

    Returns:
        sum_x (C,), sum_xx (G, c, c), count (scalar tensor), all float64.
    """
    m, c_all = x.shape
    assert c_all % num_groups == 0, 'num_groups must divide channels'
    xd = x.double()
    xg = xd.view(m, num_groups, c_all // num_groups)
    sum_x = xd.sum(0)
    sum_xx = torch.einsum('mgi,mgj->gij', xg, xg)
    count = torch.tensor(float(m), dtype=torch.float64, device=x.device)
    return sum_x, sum_xx, count


def moments_to_mean_cov(sum_x: torch.Tensor, sum_xx: torch.Tensor,
                        count: torch.Tensor,
                        eps: float) -> Tuple[torch.Tensor, torch.Tensor]:
    """mean (C,) and regularised covariance (G, c, c) from raw moments."""
    g, c, _ = sum_xx.shape
    mean = sum_x / count
    mg = mean.view(g, c)
    cov = sum_xx / count - mg.unsqueeze(-1) * mg.unsqueeze(-2)
    eye = torch.eye(c, dtype=cov.dtype, device=cov.device)
    cov = 0.5 * (cov + cov.transpose(-1, -2)) + eps * eye
    return mean, cov


def apply_grouped_whitening(x: torch.Tensor, mean: torch.Tensor,
                            w: torch.Tensor) -> torch.Tensor:
    """y = W (x - mu) for X (M, C) with block-diagonal W (G, c, c)."""
    m, c_all = x.shape
    g, c, _ = w.shape
    xc = (x - mean.to(x.dtype)).view(m, g, c)
    y = torch.einsum('mgj,gij->mgi', xc, w.to(x.dtype))
    return y.reshape(m, c_all)
