"""EffectiveRankLoss: flatten the eigenvalue spectrum of the backbone's
pooled features, so the backbone itself spreads its variance."""
import torch
import torch.distributed as dist
import torch.nn as nn
import torch.nn.functional as F

from medssl.registry import MODELS

__all__ = ['EffectiveRankLoss', 'spectral_entropy']


def spectral_entropy(z: torch.Tensor, eps: float = 1e-12) -> torch.Tensor:
    """Shannon entropy of the normalised covariance spectrum of Z (N, D).

    Computed from the N x N Gram matrix of the centred rows or the D x D
    covariance, whichever is smaller (both have the same non-zero
    eigenvalues).
    exp(entropy) is the effective rank of Roy & Vetterli (2007), the
    dimensional-collapse summary of Jing et al. (ICLR 2022).

    The gradient of a symmetric function of the eigenvalues is
    U diag(dH/dlambda) U^T: no 1/(lambda_i - lambda_j) terms, so it is finite
    for repeated eigenvalues; ``eps`` keeps log p finite for the zero
    eigenvalues (centring always makes one).

    Returns:
        scalar float64 tensor in [0, log(min(N - 1, D))].
    """
    zc = z.double() - z.double().mean(0, keepdim=True)
    gram = zc @ zc.t() if zc.shape[0] <= zc.shape[1] else zc.t() @ zc
    gram = gram / z.shape[0]
    lam = torch.linalg.eigvalsh(gram).clamp_min(0.0)
    p = lam / lam.sum().clamp_min(eps)
    return -(p * torch.log(p.clamp_min(eps))).sum()


def _gather_with_grad(z: torch.Tensor) -> torch.Tensor:
    """All ranks' rows (the local rows keep their gradient)."""
    if not (dist.is_available() and dist.is_initialized()) or \
            dist.get_world_size() == 1:
        return z
    from torch.distributed.nn.functional import all_gather
    return torch.cat(all_gather(z), dim=0)


@MODELS.register_module()
class EffectiveRankLoss(nn.Module):
    """Effective-rank (spectral entropy) loss on the backbone's pooled
    features.

    Whitening in the forward path (``EigenDecorrelationNeck``) hands the
    projector decorrelated features whatever the backbone does, so it does not
    push the backbone to spread its variance (Weng et al., "An Investigation
    into Whitening Loss for Self-supervised Learning", NeurIPS 2022). This
    loss acts on the backbone output itself: with p the eigenvalues of the
    covariance of the L2-normalised, average-pooled features of the global
    batch (all-gathered across ranks) divided by their sum,

        loss = loss_weight * (1 - H(p) / log(min(N - 1, D)))

    i.e. 0 when the batch spectrum is flat (fully decorrelated, equal
    variances), 1 when it is rank one (complete collapse). The eigenvalues
    come from an eigendecomposition (``torch.linalg.eigvalsh``, float64).
    Note that this is the quantity the collapse analysis reports (effective
    rank = exp H) measured on training batches, so judge it by the
    downstream scores, not by the effective rank alone.

    With ``per_position=True`` the samples are the N*H*W feature-map
    positions instead of the N pooled vectors: the pooled batch has at most
    N - 1 non-zero eigenvalues (3 at batch 4), the positions many more, so
    the loss sees (and spreads) more of the D channels.

    Input: (N, C, H, W) feature map or (N, C) vectors. Output: scalar.

    Args:
        loss_weight: weight of the loss.
        normalize: L2-normalise the pooled vectors first (as the collapse
            analysis does).
        gather: compute the spectrum of the global batch under DDP.
        per_position: one sample per feature-map position (not pooled).
    """

    def __init__(self,
                 loss_weight: float = 1.0,
                 normalize: bool = True,
                 gather: bool = True,
                 per_position: bool = False) -> None:
        super().__init__()
        self.loss_weight = loss_weight
        self.normalize = normalize
        self.gather = gather
        self.per_position = per_position

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        if feat.dim() == 4 and self.per_position:
            z = feat.float().permute(0, 2, 3, 1).flatten(0, 2)
        elif feat.dim() == 4:
            z = feat.float().mean((2, 3))
        else:
            z = feat.float()
        if self.normalize:
            z = F.normalize(z, dim=1)
        if self.gather:
            z = _gather_with_grad(z)
        n, d = z.shape
        if n < 3:
            return feat.sum() * 0.0
        h_max = torch.log(torch.tensor(float(min(n - 1, d)),
                                       dtype=torch.float64))
        loss = 1.0 - spectral_entropy(z) / h_max
        return (self.loss_weight * loss).to(feat.dtype)


# The registry name of the shipped configs and of older checkpoints' configs.
MODELS.register_module(name='SpectralDecorrelationLoss', module=EffectiveRankLoss)
