"""WhitenedResNet: mmseg ResNet + the pretraining decorrelation as a fixed
1x1 conv on the last stage.

The SSL model (``MedMoCo`` + ``EigenDecorrelationNeck``) whitens the last
backbone feature map with running ZCA statistics: ``y = W (x - mu)`` per
position, ``W`` block-diagonal with ``G`` groups of ``C/G`` channels. That is
an affine map per position, i.e. a 1x1 convolution with

    weight = blockdiag(W)            (C, C, 1, 1)
    bias   = -blockdiag(W) @ mu      (C,)

``WhitenedResNet`` holds those two tensors as *buffers* (state-dict keys
``whitening.weight`` / ``whitening.bias``; never trained, not in the
optimizer) and applies them to the output of the last stage. The buffers start
as NaN so a model whose checkpoint lacked whitening fails loudly instead of
silently running an un-whitened (or random) transform.
"""
from typing import Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmseg.models.backbones import ResNet as MMSegResNet

from medssl.registry import MODELS

__all__ = ['WhitenedResNet', 'FixedWhitening', 'fold_decorrelation']


def fold_decorrelation(running_mean: torch.Tensor,
                       running_whitening: torch.Tensor
                       ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Fold ``y = W (x - mu)`` into a 1x1 conv.

    Args:
        running_mean: (C,) channel means ``mu``.
        running_whitening: (G, C/G, C/G) per-group whitening matrices, or a
            full (C, C) matrix.

    Returns:
        (weight (C, C, 1, 1), bias (C,)) with ``weight = blockdiag(W)`` and
        ``bias = -blockdiag(W) @ mu`` (computed in float64, returned float32).
    """
    mean = running_mean.detach().double().reshape(-1)
    wm = running_whitening.detach().double()
    if wm.dim() == 2:
        wm = wm[None]
    if wm.dim() != 3 or wm.shape[1] != wm.shape[2]:
        raise ValueError('running_whitening must be (G, C/G, C/G) or (C, C), '
                         f'got {tuple(running_whitening.shape)}')
    full = torch.block_diag(*wm)
    if full.shape[0] != mean.numel():
        raise ValueError(f'running_whitening covers {full.shape[0]} channels '
                         f'but running_mean has {mean.numel()}')
    bias = -(full @ mean)
    return full.float()[:, :, None, None].contiguous(), bias.float()


class FixedWhitening(nn.Module):
    """A non-trainable 1x1 conv whose weight/bias are buffers."""

    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels
        self.register_buffer(
            'weight', torch.full((channels, channels, 1, 1), float('nan')))
        self.register_buffer('bias', torch.full((channels, ), float('nan')))

    def is_loaded(self) -> bool:
        return bool(torch.isfinite(self.weight).all()
                    and torch.isfinite(self.bias).all())

    def load_folded(self, weight: torch.Tensor, bias: torch.Tensor) -> None:
        self.weight.copy_(weight.reshape(self.weight.shape))
        self.bias.copy_(bias.reshape(self.bias.shape))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight.to(x.dtype), self.bias.to(x.dtype))

    def extra_repr(self) -> str:
        return f'channels={self.channels}, fixed'


@MODELS.register_module()
class WhitenedResNet(MMSegResNet):
    """mmseg ``ResNet`` whose last-stage output goes through the folded
    pretraining decorrelation (a fixed 1x1 conv).

    Only the output of stage ``num_stages - 1`` is whitened (that is where the
    neck sat during pretraining); earlier outputs in ``out_indices`` are
    returned unchanged.

    Weights must come from a checkpoint holding ``whitening.weight`` /
    ``whitening.bias`` (written by ``tools/model_converters/selfsup2mmseg.py``)
    or from a raw SSL checkpoint with ``decorrelation.running_mean`` /
    ``decorrelation.running_whitening`` when loaded with
    ``init_cfg=dict(type='VerifiedPretrained', ...)`` (folded on the fly).
    ``init_weights`` raises if the whitening was not loaded.
    """

    def __init__(self, depth, **kwargs):
        super().__init__(depth, **kwargs)
        channels = (self.base_channels * 2**(len(self.res_layers) - 1) *
                    self.block.expansion)
        self.whitening = FixedWhitening(channels)
        self._whitening_verified = False

    def init_weights(self):
        super().init_weights()
        if not self.whitening.is_loaded():
            raise RuntimeError(
                'WhitenedResNet: the checkpoint did not provide the whitening '
                '(whitening.weight / whitening.bias, or decorrelation.* in a '
                'raw SSL checkpoint); init_cfg='
                f'{self.init_cfg}. Use mmseg.ResNet for checkpoints without '
                'decorrelation.')
        self._whitening_verified = True

    def forward(self, x):
        outs = list(super().forward(x))
        last = len(self.res_layers) - 1
        if last in self.out_indices:
            if not self._whitening_verified:
                if not self.whitening.is_loaded():
                    raise RuntimeError(
                        'WhitenedResNet.forward: whitening buffers were never '
                        'loaded (still NaN)')
                self._whitening_verified = True
            idx = list(self.out_indices).index(last)
            outs[idx] = self.whitening(outs[idx])
        return tuple(outs)
