"""Dimensional-collapse metrics for embeddings (pure torch).

All functions take an embedding matrix ``z`` of shape ``(N, D)`` (N samples,
D dimensions; numpy arrays are accepted too) and compute in float64.

Definitions
-----------
* **Spectrum** (Jing et al., "Understanding Dimensional Collapse in
  Contrastive Self-supervised Learning", ICLR 2022): rows of ``z`` are
  L2-normalised, centred, and ``C = Zc^T Zc / N`` (D x D) is their covariance.
  The spectrum is the D singular values of ``C`` sorted in descending order
  (``C`` is symmetric PSD, so they equal its eigenvalues). When ``N < D`` the
  non-zero part is computed from the N x N Gram matrix (same non-zero
  eigenvalues) and padded with zeros to length D, which is exact and cheap.
  A collapsed embedding shows a tail of ~0 values.
* **Effective rank** (Roy & Vetterli, EUSIPCO 2007) of a non-negative vector
  ``s``: ``p_k = s_k / sum(s)``, ``erank = exp(-sum_k p_k log p_k)`` (terms
  with ``p_k = 0`` contribute 0). It lies in ``[1, #non-zero s_k]`` and equals
  ``k`` for ``k`` equal non-zero values. :func:`effective_rank` of an
  embedding set applies it to the **covariance spectrum** above.
* **RankMe** (Garrido et al., "RankMe: Assessing the downstream performance
  of pretrained self-supervised representations by their rank", ICML 2023):
  the same formula applied to the singular values of the **embedding matrix**
  ``z`` itself (not centred, not normalised by default), with
  ``p_k = s_k / ||s||_1 + eps`` (``eps = 1e-7`` as in the paper).
  Because the singular values of ``Z`` are the square roots of the eigenvalues
  of ``Z^T Z``, RankMe and the covariance effective rank generally differ
  even on the same matrix.
* **Alignment** (Wang & Isola, ICML 2020): ``E ||f(x) - f(x+)||_2^alpha``
  over positive pairs of L2-normalised embeddings (``alpha = 2``).
* **Uniformity** (Wang & Isola 2020):
  ``log E_{i<j} exp(-t ||f(x_i) - f(x_j)||_2^2)`` over distinct pairs of
  L2-normalised embeddings (``t = 2``). Lower is more uniform; it is 0 for a
  fully collapsed set.
* **Normalised std** (SimSiam, Chen & He 2021, the collapse indicator also
  used in Jing et al.): the per-dimension std of L2-normalised embeddings,
  averaged over dimensions. About ``1/sqrt(D)`` for well spread embeddings,
  0 for complete collapse.
"""
from typing import Dict, Optional, Union

import numpy as np
import torch

ArrayLike = Union[torch.Tensor, np.ndarray]

__all__ = [
    'as_embedding_matrix', 'l2_normalize', 'covariance_spectrum',
    'embedding_spectrum', 'effective_rank_from_values', 'effective_rank',
    'rankme', 'alignment', 'uniformity', 'normalized_std', 'collapse_metrics'
]


def as_embedding_matrix(z: ArrayLike) -> torch.Tensor:
    """Return ``z`` as a float64 CPU tensor of shape (N, D).

    Inputs with more than two dimensions (e.g. ``(N, C, 1, 1)``) are
    flattened to ``(N, -1)``.
    """
    if not isinstance(z, torch.Tensor):
        z = torch.from_numpy(np.asarray(z, dtype=np.float64))
    z = z.detach().to('cpu', torch.float64)
    if z.dim() == 1:
        z = z[None]
    if z.dim() > 2:
        z = z.reshape(z.shape[0], -1)
    return z


def l2_normalize(z: ArrayLike, eps: float = 1e-12) -> torch.Tensor:
    """Row-wise L2 normalisation (float64)."""
    z = as_embedding_matrix(z)
    return z / z.norm(dim=1, keepdim=True).clamp_min(eps)


def _sym_eigvals_desc(mat: torch.Tensor) -> torch.Tensor:
    vals = torch.linalg.eigvalsh(mat)
    return torch.flip(vals, dims=[0]).clamp_min(0.)


def covariance_spectrum(z: ArrayLike, center: bool = True) -> torch.Tensor:
    """Singular values (descending, length D) of ``Z^T Z / N`` where ``Z``
    is ``z`` (centred over samples when ``center``). No normalisation."""
    z = as_embedding_matrix(z)
    n, d = z.shape
    if center:
        z = z - z.mean(dim=0, keepdim=True)
    if n < d:
        vals = _sym_eigvals_desc(z @ z.T / n)
        out = torch.zeros(d, dtype=torch.float64)
        out[:n] = vals
        return out
    return _sym_eigvals_desc(z.T @ z / n)


def embedding_spectrum(z: ArrayLike, normalize: bool = True) -> torch.Tensor:
    """Jing et al.'s spectrum: singular values of the covariance of the
    (L2-normalised when ``normalize``) embeddings, descending, length D."""
    z = l2_normalize(z) if normalize else as_embedding_matrix(z)
    return covariance_spectrum(z, center=True)


def effective_rank_from_values(values: ArrayLike, eps: float = 0.) -> float:
    """``exp(H(p))`` with ``p = values / sum(values) + eps`` (Roy & Vetterli).

    Terms with ``p = 0`` contribute 0. Returns 0 for an all-zero vector.
    """
    v = as_embedding_matrix(values).reshape(-1).clamp_min(0.)
    total = v.sum()
    if total <= 0:
        return 0.
    p = v / total + eps
    p = p[p > 0]
    return float(torch.exp(-(p * torch.log(p)).sum()))


def effective_rank(z: ArrayLike, normalize: bool = True) -> float:
    """Effective rank of the covariance spectrum of the embeddings."""
    return effective_rank_from_values(embedding_spectrum(z, normalize))


def rankme(z: ArrayLike, eps: float = 1e-7, normalize: bool = False) -> float:
    """RankMe: effective rank of the singular values of the embedding matrix
    (Garrido et al. 2023, ``p_k = s_k / ||s||_1 + eps``)."""
    z = l2_normalize(z) if normalize else as_embedding_matrix(z)
    s = torch.linalg.svdvals(z)
    return effective_rank_from_values(s, eps=eps)


def alignment(z1: ArrayLike, z2: ArrayLike, alpha: float = 2.) -> float:
    """Wang & Isola alignment ``E ||f(x) - f(x+)||^alpha`` (normalised)."""
    a, b = l2_normalize(z1), l2_normalize(z2)
    assert a.shape == b.shape, (a.shape, b.shape)
    return float((a - b).norm(dim=1).pow(alpha).mean())


def uniformity(z: ArrayLike, t: float = 2.) -> float:
    """Wang & Isola uniformity ``log E_{i<j} exp(-t ||f_i - f_j||^2)``."""
    a = l2_normalize(z)
    if a.shape[0] < 2:
        return float('nan')
    sq = torch.pdist(a, p=2).pow(2)
    # log-mean-exp, numerically stable
    return float(torch.logsumexp(-t * sq, dim=0) - np.log(sq.numel()))


def normalized_std(z: ArrayLike) -> float:
    """Mean over dimensions of the std of L2-normalised embeddings."""
    a = l2_normalize(z)
    if a.shape[0] < 2:
        return float('nan')
    return float(a.std(dim=0).mean())


def collapse_metrics(z: ArrayLike,
                     z_pos: Optional[ArrayLike] = None,
                     with_spectrum: bool = True) -> Dict:
    """All collapse summaries of an (N, D) embedding set.

    Args:
        z: embeddings of N samples.
        z_pos: optional embeddings of a second augmented view of the same
            samples (same order) for the alignment.
        with_spectrum: include the full spectrum (a list of D floats).

    Returns:
        dict with ``dim``, ``num_samples``, ``effective_rank``, ``rankme``,
        ``normalized_std``, ``std_reference`` (= 1/sqrt(D)), ``uniformity``,
        ``mean_norm`` (mean L2 norm of the raw embeddings: the feature scale
        a downstream head receives), ``alignment`` (when ``z_pos`` is given)
        and ``spectrum``.
    """
    z = as_embedding_matrix(z)
    spec = embedding_spectrum(z)
    out = dict(
        dim=int(z.shape[1]),
        num_samples=int(z.shape[0]),
        effective_rank=effective_rank_from_values(spec),
        rankme=rankme(z),
        normalized_std=normalized_std(z),
        std_reference=float(1. / np.sqrt(z.shape[1])),
        uniformity=uniformity(z),
        mean_norm=float(z.norm(dim=1).mean()),
    )
    if z_pos is not None:
        out['alignment'] = alignment(z, z_pos)
    if with_spectrum:
        out['spectrum'] = spec.tolist()
    return out
