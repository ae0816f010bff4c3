"""MedMoCo: MoCo v2 + local patch contrast + eigen decorrelation."""
from typing import Dict, List, Optional, Sequence, Union

import torch
import torch.nn as nn
from mmengine.dist import get_rank, get_world_size
from mmengine.model import ExponentialMovingAverage
from mmselfsup.models.algorithms import MoCo
from mmselfsup.structures import SelfSupDataSample
from mmselfsup.utils import (batch_shuffle_ddp, batch_unshuffle_ddp,
                             concat_all_gather)

from medssl.registry import MODELS

__all__ = ['MedMoCo']


def _shuffle_like(x: torch.Tensor,
                  idx_unshuffle: torch.Tensor) -> torch.Tensor:
    """Apply the permutation of ``batch_shuffle_ddp`` (given its
    ``idx_unshuffle``) to per-image data ``x`` (N_local, ...)."""
    x_all = concat_all_gather(x)
    idx_shuffle = torch.argsort(idx_unshuffle)
    idx_this = idx_shuffle.view(get_world_size(), -1)[get_rank()]
    return x_all[idx_this.to(x_all.device)]


@MODELS.register_module()
class MedMoCo(MoCo):
    """MoCo v2 with the two fixes of Hassanpour et al., "Overcoming
    Dimensional Collapse in Self-supervised Contrastive Learning for Medical
    Image Segmentation", ISBI 2024 (arXiv 2402.14611).

    Query: feats = backbone(im_q) (tuple); global q = neck(decor(feats)[-1])
    (N, D); local cells: ``local_head.pool`` of feats[local_in_index]
    (N, C_l, h, w) on a G x G grid over the views' overlap, projected by
    ``local_neck`` and L2-normalised (N, G*G, D_l).
    Key: MoCo's EMA encoder (backbone + neck) and an EMA copy of the local
    neck, with MoCo's shuffle-BN; keys enter MoCo's queue exactly as in
    ``MoCo``. The decorrelation neck has no parameters: the key side uses
    the query's, with this step's channel permutation and without updating
    its running statistics.

    Losses (:meth:`loss` returns them): ``loss_global`` (MoCo's InfoNCE
    through ``head``); with a local head ``loss_local`` = ``local_weight`` *
    local InfoNCE and ``local_pairs`` (fraction of images whose views
    overlap enough for the local loss; logged, not summed: mmengine's
    ``parse_losses`` sums the keys containing 'loss'); with a
    ``decorrelation_loss`` ``loss_decor`` on the query's last backbone map
    (before the decorrelation neck, so the backbone itself is pushed).
    With ``local_head=None`` and ``decorrelation=None`` the loss equals
    mmselfsup ``MoCo``'s.

    State-dict keys: MoCo's (``backbone.*``, ``neck.*``, ``head.*``,
    ``queue``, ``queue_ptr``, key encoder ``encoder_k.module.0.*``
    (backbone) / ``encoder_k.module.1.*`` (neck), ``encoder_k.steps``);
    ``decorrelation.{running_mean, running_cov, running_whitening,
    num_batches_tracked}``; ``local_neck.*`` and its EMA copy
    ``local_neck_k.module.*``, ``local_neck_k.steps``; ``local_head.queue``,
    ``local_head.queue_ptr`` with a local queue.

    Args:
        backbone, neck, head, queue_len, feat_dim, momentum, pretrained,
            data_preprocessor, init_cfg: as in ``MoCo``.
        local_head: ``LocalPatchContrastiveHead`` config or None.
        local_neck: projector of the local cells (needed with a local head),
            e.g. ``MoCoV2Neck`` with ``with_avg_pool=False``: fc-relu-fc on
            each pooled cell.
        local_weight: lambda of L = L_global + lambda * L_local.
        decorrelation: ``EigenDecorrelationNeck`` config or None (placed
            between backbone and neck).
        local_in_index: which backbone output the local head uses.
        decorrelation_loss: ``EffectiveRankLoss`` config or None: a loss
            on the query backbone's last map.

    Inputs: ``inputs`` = [im_q, im_k] (N, C, H, W) each; ``data_samples[i]
    .metainfo['view_params']`` = [params_q, params_k] (needed only with a
    local head).
    """

    def __init__(self,
                 backbone: dict,
                 neck: dict,
                 head: dict,
                 queue_len: int = 65536,
                 feat_dim: int = 128,
                 momentum: float = 0.999,
                 local_head: Optional[dict] = None,
                 local_neck: Optional[dict] = None,
                 local_weight: float = 0.5,
                 decorrelation: Optional[dict] = None,
                 local_in_index: int = 0,
                 decorrelation_loss: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone, neck=neck, head=head, queue_len=queue_len,
            feat_dim=feat_dim, momentum=momentum, pretrained=pretrained,
            data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if local_head is not None and local_neck is None:
            raise ValueError('MedMoCo: local_head needs a local_neck '
                             '(the projector of the local cells)')
        self.local_weight = local_weight
        self.local_in_index = local_in_index
        self.decorrelation = MODELS.build(decorrelation) \
            if decorrelation is not None else None
        self.local_head = None
        if local_head is not None:
            self.local_neck = MODELS.build(local_neck)
            self.local_neck_k = ExponentialMovingAverage(
                self.local_neck, 1 - momentum)
            self.local_head = MODELS.build(local_head)
        self.decorrelation_loss = MODELS.build(decorrelation_loss) \
            if decorrelation_loss is not None else None

    @property
    def with_local(self) -> bool:
        return self.local_head is not None

    def _global_embedding(self, feats: Sequence[torch.Tensor],
                          neck: nn.Module, perm: Optional[torch.Tensor],
                          update_stats: bool) -> torch.Tensor:
        """L2-normalised neck(decorrelation(feats)[-1]) (N, D)."""
        if self.decorrelation is not None:
            feats = self.decorrelation(feats, perm=perm,
                                       update_stats=update_stats)
        return nn.functional.normalize(neck((feats[-1], ))[0], dim=1)

    def _local_embedding(self, feat: torch.Tensor, boxes: torch.Tensor,
                         input_hw: Sequence[int],
                         neck: nn.Module) -> torch.Tensor:
        """L2-normalised ``neck`` of the cells pooled from ``feat``
        (N, C_l, h, w) with ``boxes`` (N, K, 4): (N, K, D_l)."""
        pooled = self.local_head.pool(feat, boxes, input_hw)
        n, k, c = pooled.shape
        z = neck((pooled.reshape(n * k, c), ))[0]
        return nn.functional.normalize(z.view(n, k, -1), dim=-1)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[SelfSupDataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Returns ``dict(loss_global=...)`` plus ``loss_local`` and
        ``local_pairs`` with a local head and ``loss_decor`` with a
        decorrelation loss (scalar tensors)."""
        im_q, im_k = inputs[0], inputs[1]
        # This step's channel groups, shared by the query and the key.
        perm = self.decorrelation.permutation(im_q.device) \
            if self.decorrelation is not None else None
        feats_q = self.backbone(im_q)
        q = self._global_embedding(feats_q, self.neck, perm, True)

        if self.with_local:
            local_q = feats_q[self.local_in_index]
            view_params = [ds.metainfo['view_params'] for ds in data_samples]
            input_hw = tuple(im_q.shape[-2:])
            boxes_q, boxes_k, valid = self.local_head.grid_boxes(
                view_params, feat_hw=tuple(local_q.shape[-2:]),
                input_hw=input_hw)

        with torch.no_grad():
            self.encoder_k.update_parameters(
                nn.Sequential(self.backbone, self.neck))
            if self.with_local:
                self.local_neck_k.update_parameters(self.local_neck)
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
            backbone_k, neck_k = self.encoder_k.module
            feats_k = backbone_k(im_k)
            k = self._global_embedding(feats_k, neck_k, perm, False)
            k = batch_unshuffle_ddp(k, idx_unshuffle)
            if self.with_local:
                # The key maps are in shuffled order: pool them with the
                # boxes of the images they came from, then unshuffle the
                # small (N, G*G, D) cell embeddings instead of the maps.
                boxes_k_sh = _shuffle_like(
                    boxes_k.to(im_k.device), idx_unshuffle)
                cells_k = self._local_embedding(
                    feats_k[self.local_in_index], boxes_k_sh, input_hw,
                    self.local_neck_k.module)
                cells_k = batch_unshuffle_ddp(cells_k, idx_unshuffle)

        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])
        losses = dict(loss_global=self.head(l_pos, l_neg))
        self._dequeue_and_enqueue(k)

        if self.with_local:
            cells_q = self._local_embedding(local_q, boxes_q, input_hw,
                                            self.local_neck)
            losses['loss_local'] = self.local_weight * self.local_head.loss(
                cells_q, cells_k, valid)
            losses['local_pairs'] = valid.float().mean().to(q.device)
        if self.decorrelation_loss is not None:
            losses['loss_decor'] = self.decorrelation_loss(feats_q[-1])
        return losses
