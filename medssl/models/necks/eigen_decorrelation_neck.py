"""EigenDecorrelationNeck: grouped ZCA whitening of the last feature map."""
from typing import Optional, Sequence, Tuple

import torch
import torch.distributed as dist
from mmengine.model import BaseModule

from medssl.registry import MODELS
from ..utils.whitening import (apply_grouped_whitening, block_diag_groups,
                               grouped_moments, inv_sqrt_cov,
                               moments_to_mean_cov)

__all__ = ['EigenDecorrelationNeck']


def _dist_world_size() -> int:
    if dist.is_available() and dist.is_initialized():
        return dist.get_world_size()
    return 1


@MODELS.register_module()
class EigenDecorrelationNeck(BaseModule):
    """Feature decorrelation by eigen-decomposition (ZCA whitening).

    Contribution 2 of Hassanpour et al., ISBI 2024 (arXiv 2402.14611):
    rescale and rotate the backbone's final features so that channels are
    decorrelated, before the MoCo projector.

    Input ``x``: tuple of feature maps; the last one (N, C, H, W) is whitened
    at every position by the same affine map y = W (x - mu) (so it is a 1x1
    conv downstream, see :meth:`folded_conv_params`). Output: the tuple with
    the last element replaced by y, same shape.

    Where the statistics come from (``stats``):

    * ``'positions'``: all M = N*H*W positions, as BN/IterNorm do; the
      channels are decorrelated over space and images alike.
    * ``'pooled'``: the N spatially averaged vectors. Average pooling
      commutes with the affine map, so the pooled output that the projector
      sees, W (mean(x) - mu), has identity covariance over the batch: the
      image-level embedding, where dimensional collapse is measured, is what
      gets whitened. Needs a (global) batch well above c = C / G.

    Channels are split into ``num_groups`` contiguous groups of
    c = in_channels / num_groups channels; W is block diagonal (G, c, c).

    Train mode: batch statistics. When torch.distributed is initialised and
    ``sync_stats`` is True the float64 sums of x and x x^T and the counts are
    all-reduced (differentiably), so every rank uses the statistic of the
    global batch. Buffers ``running_mean`` (C,) and ``running_whitening``
    (G, c, c) are updated as r <- (1 - momentum) r + momentum * batch.
    Eval mode: the running buffers.

    Args:
        in_channels: C.
        num_groups: G (must divide C).
        eps: added to the covariance diagonal.
        momentum: running-statistics momentum.
        method: ``'eigh'`` (exact, guarded backward) or ``'newton_schulz'``.
        ns_iters: Newton-Schulz iterations.
        sync_stats: all-reduce statistics across ranks in train mode.
        stats: ``'positions'`` or ``'pooled'`` (see above).
    """

    def __init__(self,
                 in_channels: int,
                 num_groups: int = 64,
                 eps: float = 1e-5,
                 momentum: float = 0.1,
                 method: str = 'eigh',
                 ns_iters: int = 5,
                 sync_stats: bool = True,
                 stats: str = 'positions',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        assert in_channels % num_groups == 0, \
            f'num_groups={num_groups} must divide in_channels={in_channels}'
        assert method in ('eigh', 'newton_schulz'), method
        assert stats in ('positions', 'pooled'), stats
        self.stats = stats
        self.in_channels = in_channels
        self.num_groups = num_groups
        self.group_channels = in_channels // num_groups
        self.eps = eps
        self.momentum = momentum
        self.method = method
        self.ns_iters = ns_iters
        self.sync_stats = sync_stats
        eye = torch.eye(self.group_channels)
        self.register_buffer('running_mean', torch.zeros(in_channels))
        self.register_buffer('running_whitening',
                             eye.repeat(num_groups, 1, 1).contiguous())

    def batch_statistics(
            self, x2d: torch.Tensor) -> Tuple[torch.Tensor, torch.Tensor]:
        """mean (C,) and W (G, c, c), float64, of X (M, C) (global batch when
        distributed)."""
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
        mean, cov = moments_to_mean_cov(sum_x, sum_xx, count, self.eps)
        w = inv_sqrt_cov(cov, self.method, self.ns_iters)
        return mean, w

    def whiten(self, feat: torch.Tensor) -> torch.Tensor:
        """Whiten one (N, C, H, W) map."""
        n, c, h, wd = feat.shape
        assert c == self.in_channels, (c, self.in_channels)
        # fp16/bf16 inputs (AMP) are whitened in float32.
        work_dtype = torch.float32 if feat.dtype in (
            torch.float16, torch.bfloat16) else feat.dtype
        x2d = feat.to(work_dtype).permute(0, 2, 3, 1).reshape(-1, c)
        if self.training:
            mean, w = self.batch_statistics(
                x2d if self.stats == 'positions' else feat.to(work_dtype).mean(
                    (2, 3)))
            with torch.no_grad():
                m = self.momentum
                self.running_mean.mul_(1 - m).add_(
                    mean.detach().to(self.running_mean.dtype), alpha=m)
                self.running_whitening.mul_(1 - m).add_(
                    w.detach().to(self.running_whitening.dtype), alpha=m)
        else:
            mean, w = self.running_mean, self.running_whitening
        y = apply_grouped_whitening(x2d, mean, w)
        y = y.view(n, h, wd, c).permute(0, 3, 1, 2).contiguous()
        return y.to(feat.dtype)

    def forward(self, x: Sequence[torch.Tensor]) -> Tuple[torch.Tensor, ...]:
        x = tuple(x)
        # Under AMP the float32 matmul of W would be cast to fp16; whitening
        # must stay in full precision.
        with torch.autocast(device_type=x[-1].device.type, enabled=False):
            y = self.whiten(x[-1])
        return x[:-1] + (y, )

    @torch.no_grad()
    def folded_conv_params(self) -> Tuple[torch.Tensor, torch.Tensor]:
        """The running whitening as a 1x1 conv: y = W x + b, b = -W mu.

        Returns:
            weight (C, C, 1, 1) block diagonal, bias (C,).
        """
        w = block_diag_groups(self.running_whitening.double())
        bias = -(w @ self.running_mean.double())
        dtype = self.running_whitening.dtype
        return (w.to(dtype)[:, :, None, None].contiguous(), bias.to(dtype))
