"""EigenDecorrelationNeck: ZCA whitening of the last feature map that reaches
every channel pair (full width, or channel groups reshuffled every step)."""
import warnings
from typing import Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.model import BaseModule

from medssl.registry import MODELS
from ..utils.whitening import (apply_grouped_whitening, eigh_inv_sqrt,
                               grouped_moments, moments_to_mean_cov)

__all__ = ['EigenDecorrelationNeck']


def _dist_world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


def _unpermute(t: torch.Tensor, perm: Optional[torch.Tensor]) -> torch.Tensor:
    """Columns (last dim) of ``t`` given in ``perm`` order -> channel
    order (``perm`` None: unchanged)."""
    if perm is None:
        return t
    out = torch.empty_like(t)
    out[..., perm] = t
    return out


@MODELS.register_module()
class EigenDecorrelationNeck(BaseModule):
    """Feature decorrelation by eigen-decomposition (ZCA whitening).

    Contribution 2 of Hassanpour et al., ISBI 2024 (arXiv 2402.14611):
    rotate, rescale and rotate back the backbone's final features,
    y = U Lambda^{-1/2} U^T (x - mu), so that channels are decorrelated,
    before the MoCo projector.

    Input ``x``: tuple of feature maps; the last one (N, C, H, W) is whitened
    at every position by the same affine map (a 1x1 conv downstream, see
    :func:`medssl.models.backbones.fold_decorrelation`). Output: the tuple
    with the last element replaced by y, same shape.

    Which channel pairs are decorrelated (``num_groups``, ``shuffle_groups``):

    * ``num_groups=1``: full-width ZCA, every pair, one C x C eigh per step.
      Needs the (all-reduced) number of samples well above C.
    * ``num_groups=G``: G blocks of c = C / G channels (G eigh of c x c,
      cheaper, full rank with few samples) -- pairs across blocks are never
      decorrelated when the blocks are fixed.
    * ``shuffle_groups=True``: a fresh random channel -> group assignment
      every training step (Shuffled-DBN, Hua et al., ICCV 2021), the same on
      every rank (drawn from ``shuffle_seed`` and the step counter
      ``num_batches_tracked`` by :meth:`permutation`), so every pair is
      decorrelated over time at grouped cost. A caller that whitens a second
      batch in the same step (MedMoCo's key encoder) passes the query's
      permutation to ``forward`` with ``update_stats=False``.

    Train mode: statistics of all N*H*W positions of the batch (as
    BN/IterNorm); with torch.distributed the float64 sums are
    all-reduced differentiably (SyncBN-like), so every rank whitens alike.
    The gradient of Sigma^{-1/2} uses the closed-form Daleckii-Krein backward
    of :class:`medssl.models.utils.whitening.EighInvSqrt` (finite for equal
    eigenvalues).

    Running statistics (eval mode, downstream): ``running_mean`` (C,) and a
    running *covariance* ``running_cov`` (C, C) -- as decorrelated BN does,
    the covariance is averaged and then decomposed; an average of per-batch
    W would be biased with few samples. r <- (1 - momentum) r + momentum *
    batch on the diagonal blocks for fixed groups, on the whole matrix
    otherwise (with shuffled groups the full batch covariance is measured
    without gradient, one extra C x C all-reduce per step). The eval whitening
    ``running_whitening`` (G_e, c_e, c_e) is the ZCA of ``running_cov``:
    full width (G_e = 1) unless the groups are fixed (then the diagonal
    blocks, the transform training used). It is recomputed lazily (on eval
    forward, on ``state_dict()``), so checkpoints always hold it fresh.
    State-dict keys: ``running_mean``, ``running_cov``, ``running_whitening``,
    ``num_batches_tracked``.

    Args:
        in_channels: C.
        num_groups: G (must divide C).
        shuffle_groups: redraw the channel -> group assignment every step.
        eps: added to the covariance diagonal.
        momentum: running-statistics momentum.
        sync_stats: all-reduce statistics across ranks in train mode.
        shuffle_seed: seed of the group permutations.
    """

    def __init__(self,
                 in_channels: int,
                 num_groups: int = 64,
                 shuffle_groups: bool = False,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 sync_stats: bool = True,
                 shuffle_seed: int = 0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        assert in_channels % num_groups == 0, \
            f'num_groups={num_groups} must divide in_channels={in_channels}'
        self.in_channels = in_channels
        self.num_groups = num_groups
        self.group_channels = in_channels // num_groups
        self.shuffle_groups = shuffle_groups and num_groups > 1
        self.eps = eps
        self.momentum = momentum
        self.sync_stats = sync_stats
        self.shuffle_seed = shuffle_seed
        # Eval whitening: full width unless training used fixed groups.
        self.eval_groups = num_groups if (num_groups > 1 and
                                          not self.shuffle_groups) else 1
        ce = in_channels // self.eval_groups
        self.register_buffer('running_mean', torch.zeros(in_channels))
        self.register_buffer('running_cov', torch.eye(in_channels))
        self.register_buffer('running_whitening',
                             torch.eye(ce).repeat(self.eval_groups, 1, 1))
        self.register_buffer('num_batches_tracked',
                             torch.tensor(0, dtype=torch.long))
        # Step at which running_whitening was last computed (-1: stale).
        self._whitening_step = -1
        self._warned_rank = False

    # ---------------------------------------------------------------- groups
    def permutation(self, device=None) -> Optional[torch.Tensor]:
        """Channel order of this step's groups (None = identity): group g
        holds channels ``perm[g*c:(g+1)*c]``. A function of the seed and the
        step counter only, hence identical on every rank."""
        if not self.shuffle_groups:
            return None
        gen = torch.Generator().manual_seed(
            self.shuffle_seed * 1_000_003 + int(self.num_batches_tracked))
        return torch.randperm(self.in_channels, generator=gen).to(device)

    # ------------------------------------------------------------ statistics
    def batch_statistics(
        self, x2d: torch.Tensor
    ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, float]:
        """mean (C,), covariance blocks (G, c, c) and W (G, c, c), float64,
        and the sample count M, of X (M, C) already in group order (global
        batch when distributed)."""
        sum_x, sum_xx, count = grouped_moments(x2d, self.num_groups)
        if self.sync_stats and _dist_world_size() > 1:
            # One flat float64 buffer -> one collective; the autograd-aware
            # all_reduce sums the gradients back, as SyncBN does.
            from torch.distributed.nn.functional import all_reduce
            flat = torch.cat([sum_x, sum_xx.reshape(-1), count.view(1)])
            flat = all_reduce(flat)
            n_c = sum_x.numel()
            sum_x = flat[:n_c]
            sum_xx = flat[n_c:-1].view_as(sum_xx)
            count = flat[-1]
        m = float(count.item())
        if not self._warned_rank and m <= self.group_channels:
            warnings.warn(f'EigenDecorrelationNeck: {int(m)} samples for '
                          f'groups of {self.group_channels} channels: the '
                          'covariance is rank-deficient and only eps '
                          'regularises it (use more groups).')
            self._warned_rank = True
        mean, cov = moments_to_mean_cov(sum_x, sum_xx, count, self.eps)
        return mean, cov, eigh_inv_sqrt(cov), m

    @torch.no_grad()
    def _full_covariance(self, x2d: torch.Tensor,
                         mean: torch.Tensor) -> torch.Tensor:
        """(C, C) covariance of the global batch X (M, C) around ``mean``
        (the all-reduced batch mean, original channel order). float32: the
        data are centred and no gradient flows here, and the M x C x C
        product is the one cost the shuffled groups add."""
        xc = x2d.float() - mean.to(device=x2d.device, dtype=torch.float32)
        cov = xc.t() @ xc
        count = torch.tensor(float(x2d.shape[0]), device=x2d.device)
        if self.sync_stats and _dist_world_size() > 1:
            dist.all_reduce(cov)
            dist.all_reduce(count)
        return cov.div_(count)

    @torch.no_grad()
    def _update_running(self, mean: torch.Tensor, cov: torch.Tensor,
                        count: float,
                        full_cov: Optional[torch.Tensor] = None) -> None:
        """EMA of the mean (C,) (channel order) and of the covariance:
        ``full_cov`` (C, C) when given, else the diagonal blocks ``cov``
        (G, c, c, including eps) of the fixed groups; ``count`` samples."""
        m = self.momentum
        # Unbiased (Bessel) covariance for the running estimate, as BN's
        # running_var: small batches would otherwise shrink it by (M-1)/M.
        bessel = count / max(count - 1.0, 1.0)
        eye = torch.eye(cov.shape[-1], dtype=cov.dtype, device=cov.device)
        cov = (cov - self.eps * eye) * bessel
        if full_cov is not None:  # in place: the caller's fresh C x C
            full_cov.mul_(bessel)
        self.running_mean.mul_(1 - m).add_(
            mean.to(self.running_mean.dtype), alpha=m)
        if full_cov is not None:
            self.running_cov.mul_(1 - m).add_(
                full_cov.to(self.running_cov.dtype), alpha=m)
        else:  # only the diagonal blocks, in place: O(C c), not O(C^2)
            g, c = self.num_groups, self.group_channels
            idx = torch.arange(g, device=self.running_cov.device)
            rc = self.running_cov.view(g, c, g, c)
            rc[idx, :, idx, :] = (1 - m) * rc[idx, :, idx, :] + \
                m * cov.to(self.running_cov.dtype)
        self.num_batches_tracked.add_(1)

    @torch.no_grad()
    def refresh_running_whitening(self) -> torch.Tensor:
        """Recompute ``running_whitening`` = ZCA(``running_cov``) (blocks of
        the eval grouping) and return it."""
        step = int(self.num_batches_tracked)
        if step != self._whitening_step:
            ge, ce = self.eval_groups, self.in_channels // self.eval_groups
            cov = self.running_cov.double()
            blocks = torch.stack([
                cov[i * ce:(i + 1) * ce, i * ce:(i + 1) * ce]
                for i in range(ge)
            ])
            eye = torch.eye(ce, dtype=cov.dtype, device=cov.device)
            blocks = 0.5 * (blocks + blocks.transpose(-1, -2)) + self.eps * eye
            w = eigh_inv_sqrt(blocks)
            self.running_whitening.copy_(w.to(self.running_whitening.dtype))
            self._whitening_step = step
        return self.running_whitening

    # --------------------------------------------------------------- forward
    def whiten(self, feat: torch.Tensor, perm: Optional[torch.Tensor] = None,
               update_stats: bool = True) -> torch.Tensor:
        """Whiten one (N, C, H, W) map (``perm``, ``update_stats``: see
        :meth:`forward`)."""
        n, c, h, wd = feat.shape
        assert c == self.in_channels, (c, self.in_channels)
        # fp16/bf16 inputs (AMP) are whitened in float32.
        work_dtype = torch.float32 if feat.dtype in (
            torch.float16, torch.bfloat16) else feat.dtype
        x2d = feat.to(work_dtype).permute(0, 2, 3, 1).reshape(-1, c)
        if self.training:
            if perm is None:
                perm = self.permutation(feat.device)
            xg = x2d if perm is None else x2d[:, perm]  # group order
            mean, cov, w, count = self.batch_statistics(xg)
            if update_stats:
                mean_c = _unpermute(mean.detach(), perm)  # channel order
                full_cov = None if perm is None else self._full_covariance(
                    x2d.detach(), mean_c)
                self._update_running(mean_c, cov.detach(), count, full_cov)
            y = _unpermute(apply_grouped_whitening(xg, mean, w), perm)
        else:
            y = apply_grouped_whitening(x2d, self.running_mean,
                                        self.refresh_running_whitening())
        y = y.view(n, h, wd, c).permute(0, 3, 1, 2).contiguous()
        return y.to(feat.dtype)

    def forward(self, x: Sequence[torch.Tensor],
                perm: Optional[torch.Tensor] = None,
                update_stats: bool = True) -> Tuple[torch.Tensor, ...]:
        """Whiten the last map of ``x``.

        Args:
            x: feature maps; the last one (N, C, H, W) is whitened.
            perm: train mode, shuffled groups: this step's channel order
                (:meth:`permutation`); None draws it from the step counter.
            update_stats: train mode: update the running statistics and
                advance the step counter.
        """
        x = tuple(x)
        # Under AMP the float32 matmul of W would be cast to fp16; whitening
        # must stay in full precision.
        with torch.autocast(device_type=x[-1].device.type, enabled=False):
            y = self.whiten(x[-1], perm, update_stats)
        return x[:-1] + (y, )

    # ------------------------------------------------------------ checkpoint
    def _save_to_state_dict(self, destination, prefix, keep_vars):
        self.refresh_running_whitening()
        super()._save_to_state_dict(destination, prefix, keep_vars)

    def _load_from_state_dict(self, *args, **kwargs):
        super()._load_from_state_dict(*args, **kwargs)
        self._whitening_step = -1
