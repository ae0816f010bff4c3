"""LocalProjectionNeck: projector of the local patch cells."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule

from medssl.registry import MODELS

__all__ = ['LocalProjectionNeck']


@MODELS.register_module()
class LocalProjectionNeck(BaseModule):
    """Projects RoIAlign-pooled cells (``LocalPatchContrastiveHead.pool``)
    and L2-normalises them: (N, K, C) -> (N, K, D).

    A small MLP, 1x1 conv - ReLU - 1x1 conv on the pooled (N*K, C, 1, 1).
    ``MedMoCo`` owns it as its local neck (as DenseCL owns its dense
    projector) and keeps an EMA copy for the key side. State-dict keys
    ``mlp.0.*``, ``mlp.2.*``.

    Args:
        in_channels: C, channels of the backbone stage (R50 layer3: 1024,
            R18 layer3: 256).
        hid_channels: hidden channels.
        out_channels: embedding dimension D.
    """

    def __init__(self,
                 in_channels: int,
                 hid_channels: int,
                 out_channels: int = 128,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.mlp = nn.Sequential(
            nn.Conv2d(in_channels, hid_channels, 1), nn.ReLU(inplace=True),
            nn.Conv2d(hid_channels, out_channels, 1))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        n, k, c = pooled.shape
        z = self.mlp(pooled.reshape(n * k, c, 1, 1)).view(n, k, -1)
        return F.normalize(z, dim=-1)
