"""MedMoCo: MoCo v2 + local patch contrast + eigen decorrelation."""
from typing import Dict, List, Optional, Tuple, Union

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


class _EncoderBundle(nn.Module):
    """backbone -> [decorrelation] -> neck (global) + the local stage map.

    Built around the query modules each step (like MoCo's
    ``nn.Sequential(backbone, neck)``) and deep-copied once into the EMA key
    encoder, so the key side owns copies of every module, including the local
    projector (used by MedMoCo through ``local_projector``).
    """

    def __init__(self,
                 backbone: nn.Module,
                 neck: nn.Module,
                 decorrelation: Optional[nn.Module] = None,
                 local_projector: Optional[nn.Module] = None,
                 local_in_index: int = 0) -> None:
        super().__init__()
        self.backbone = backbone
        self.neck = neck
        self.decorrelation = decorrelation
        self.local_projector = local_projector
        self.local_in_index = local_in_index

    def forward(self, x: torch.Tensor
                ) -> Tuple[torch.Tensor, Optional[torch.Tensor], torch.Tensor]:
        """Returns the global embedding (N, D) (not normalised), the local
        stage map (N, C_l, h, w) (None without a local projector) and the
        last backbone map (N, C, H, W) before any decorrelation."""
        feats = self.backbone(x)
        g = feats if self.decorrelation is None else self.decorrelation(feats)
        z = self.neck((g[-1], ))[0]
        local = feats[self.local_in_index] \
            if self.local_projector is not None else None
        return z, local, feats[-1]


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
    (N, D); local cells from feats[local_in_index] (N, C_l, h, w) pooled on a
    G x G grid over the views' overlap (see ``LocalPatchContrastiveHead``).
    Key: EMA copy of backbone + decorrelation + neck + local projector, with
    MoCo's shuffle-BN; keys enter MoCo's queue exactly as in ``MoCo``.

    Losses: ``loss_global`` (MoCo's InfoNCE through ``head``), with a local
    head ``loss_local`` = ``local_weight`` * local InfoNCE, and with a
    ``decorrelation_loss`` ``loss_decor`` on the query's last backbone map
    (before the decorrelation neck, so the backbone itself is pushed).
    mmengine's ``parse_losses`` sums every key containing 'loss' and logs
    each; ``local_pairs`` (fraction of images whose views overlap enough for
    the local loss) is logged, not summed.
    With ``local_head=None`` and ``decorrelation=None`` the loss equals
    mmselfsup ``MoCo``'s.

    Args:
        backbone, neck, head, queue_len, feat_dim, momentum, pretrained,
            data_preprocessor, init_cfg: as in ``MoCo``.
        local_head: ``LocalPatchContrastiveHead`` config or None.
        local_weight: lambda of L = L_global + lambda * L_local.
        decorrelation: ``EigenDecorrelationNeck`` config or None (placed
            between backbone and neck; state-dict keys
            ``decorrelation.running_mean`` /
            ``decorrelation.running_whitening``).
        local_in_index: which backbone output the local head uses.
        decorrelation_loss: e.g. ``SpectralDecorrelationLoss`` config or
            None: a loss on the query backbone's last map.

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
                 local_weight: float = 0.5,
                 decorrelation: Optional[dict] = None,
                 local_in_index: int = 0,
                 decorrelation_loss: Optional[dict] = None,
                 pretrained: Optional[str] = None,
                 data_preprocessor: Optional[dict] = None,
                 init_cfg: Optional[Union[List[dict], dict]] = None) -> None:
        super().__init__(
            backbone=backbone,
            neck=neck,
            head=head,
            queue_len=queue_len,
            feat_dim=feat_dim,
            momentum=momentum,
            pretrained=pretrained,
            data_preprocessor=data_preprocessor,
            init_cfg=init_cfg)
        self.momentum = momentum
        self.local_weight = local_weight
        self.local_in_index = local_in_index
        self.decorrelation = MODELS.build(decorrelation) \
            if decorrelation is not None else None
        self.local_head = MODELS.build(local_head) \
            if local_head is not None else None
        self.decorrelation_loss = MODELS.build(decorrelation_loss) \
            if decorrelation_loss is not None else None
        # Replace MoCo's EMA of Sequential(backbone, neck) by an EMA of the
        # whole bundle, so the key side also has its own decorrelation and
        # local projector.
        del self.encoder_k
        self.encoder_k = ExponentialMovingAverage(self._bundle(),
                                                  1 - momentum)
        if self.decorrelation is not None:
            # The key's running statistics would be overwritten by the
            # query's at every EMA update: do not spend time on them.
            self.encoder_k.module.decorrelation.track_running_stats = False

    @property
    def with_local(self) -> bool:
        return self.local_head is not None

    def _bundle(self) -> _EncoderBundle:
        return _EncoderBundle(
            self.backbone, self.neck, self.decorrelation,
            self.local_head.projector if self.with_local else None,
            self.local_in_index)

    def loss(self, inputs: List[torch.Tensor],
             data_samples: List[SelfSupDataSample],
             **kwargs) -> Dict[str, torch.Tensor]:
        """Returns ``dict(loss_global=...[, loss_local=...])``."""
        im_q, im_k = inputs[0], inputs[1]
        bundle = self._bundle()
        q, local_q, last_q = bundle(im_q)
        q = nn.functional.normalize(q, dim=1)

        if self.with_local:
            view_params = [ds.metainfo['view_params'] for ds in data_samples]
            input_hw = tuple(im_q.shape[-2:])
            boxes_q, boxes_k, valid = self.local_head.grid_boxes(
                view_params, feat_hw=tuple(local_q.shape[-2:]),
                input_hw=input_hw)

        with torch.no_grad():
            self.encoder_k.update_parameters(bundle)
            if self.decorrelation is not None:
                # The update copied the query's step counter (already
                # advanced by the query forward); step it back so the key
                # whitens with the same shuffled channel groups (it does not
                # track running statistics, so it stays there).
                self.encoder_k.module.decorrelation.num_batches_tracked.copy_(
                    self.decorrelation.num_batches_tracked - 1)
            im_k, idx_unshuffle = batch_shuffle_ddp(im_k)
            k, local_k, _ = self.encoder_k(im_k)
            k = nn.functional.normalize(k, dim=1)
            k = batch_unshuffle_ddp(k, idx_unshuffle)
            if self.with_local:
                # The key maps are in shuffled order: pool them with the
                # boxes of the images they came from, then unshuffle the
                # small (N, G*G, D) cell embeddings instead of the maps.
                boxes_k_sh = _shuffle_like(
                    boxes_k.to(local_k.device), idx_unshuffle)
                cells_k = self.local_head.embed(
                    local_k, boxes_k_sh, input_hw,
                    self.encoder_k.module.local_projector)
                cells_k = batch_unshuffle_ddp(cells_k, idx_unshuffle)

        l_pos = torch.einsum('nc,nc->n', [q, k]).unsqueeze(-1)
        l_neg = torch.einsum('nc,ck->nk', [q, self.queue.clone().detach()])
        losses = dict(loss_global=self.head(l_pos, l_neg))
        self._dequeue_and_enqueue(k)

        if self.with_local:
            cells_q = self.local_head.embed(local_q, boxes_q, input_hw)
            losses['loss_local'] = self.local_weight * self.local_head.loss(
                cells_q, cells_k, valid)
            losses['local_pairs'] = valid.float().mean().to(q.device)
        if self.decorrelation_loss is not None:
            losses['loss_decor'] = self.decorrelation_loss(last_q)
        return losses
