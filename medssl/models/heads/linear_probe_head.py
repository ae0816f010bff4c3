"""LinearProbeHead: affine-free BatchNorm + 1x1 conv classifier on frozen
features (the segmentation linear probe)."""
from typing import Optional, Tuple

import torch
from mmcv.cnn import build_norm_layer
from mmseg.models.decode_heads.decode_head import BaseDecodeHead

from medssl.registry import MODELS

__all__ = ['LinearProbeHead']


@MODELS.register_module()
class LinearProbeHead(BaseDecodeHead):
    """Linear probe for semantic segmentation on a frozen backbone.

    ``logits = conv1x1(BN_affine_free(x))`` on one feature map, upsampled
    bilinearly by mmseg's :class:`BaseDecodeHead` (to the label size in
    ``loss_by_feat``, to the image size in ``predict_by_feat``).

    Why the BatchNorm: frozen features of different backbones (random init,
    each SSL method) have very different scales; a bare linear classifier at
    one learning rate then measures the scale, not the representation (the
    ranking of checkpoints flips with the lr). Normalising each channel with
    batch statistics and no learnable affine (MAE's linear probe, He et al.
    2022, Sec. A.2; also MoCo v3) makes the probe scale-invariant while the
    classifier stays linear: in eval mode BN is a fixed per-channel affine
    map that folds into the 1x1 conv. Use ``norm_cfg=dict(type='SyncBN',
    affine=False)`` under DDP (global batch statistics).

    Args:
        in_channels (int): channels C of the probed feature map.
        num_classes (int): classes K including background.
        norm_cfg (dict): the normalisation; ``affine`` defaults to False.
            Defaults to ``dict(type='BN', affine=False)``.
        in_index (int): which backbone output to probe. Defaults to -1.
        dropout_ratio (float): dropout before the classifier. Defaults to 0.
        **kwargs: the other :class:`BaseDecodeHead` arguments (loss_decode,
            align_corners, ignore_index, init_cfg, ...); ``channels`` is
            ``in_channels`` (no hidden layer).

    Shapes:
        inputs: tuple of (N, C_i, H_i, W_i); output: (N, K, H, W) of the
        ``in_index`` map (before upsampling).
    """

    def __init__(self,
                 in_channels: int,
                 num_classes: int,
                 norm_cfg: Optional[dict] = dict(type='BN', affine=False),
                 in_index: int = -1,
                 dropout_ratio: float = 0.0,
                 **kwargs) -> None:
        if 'channels' in kwargs and kwargs['channels'] != in_channels:
            raise ValueError('LinearProbeHead has no hidden layer: channels '
                             f'must equal in_channels={in_channels}, got '
                             f'{kwargs["channels"]}')
        kwargs.pop('channels', None)
        if norm_cfg is None:
            raise ValueError('LinearProbeHead needs a norm_cfg (the probe '
                             'normalisation); e.g. dict(type="BN", '
                             'affine=False)')
        norm_cfg = dict(norm_cfg)
        norm_cfg.setdefault('affine', False)
        super().__init__(
            in_channels,
            in_channels,
            num_classes=num_classes,
            norm_cfg=norm_cfg,
            in_index=in_index,
            dropout_ratio=dropout_ratio,
            **kwargs)
        # build_norm_layer returns (name, layer); the name (e.g. 'bn') is
        # not used: the layer is always called ``bn``.
        self.bn = build_norm_layer(norm_cfg, in_channels)[1]

    def forward(self, inputs: Tuple[torch.Tensor]) -> torch.Tensor:
        """(N, C, H, W) selected map -> (N, K, H, W) logits."""
        x = self._transform_inputs(inputs)
        return self.cls_seg(self.bn(x))
