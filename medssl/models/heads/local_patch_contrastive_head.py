"""LocalPatchContrastiveHead: InfoNCE between matching cells of two views."""
from typing import Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModule
from torchvision.ops import roi_align

from medssl.registry import MODELS

__all__ = ['LocalPatchContrastiveHead', 'overlap_grid_boxes']


def _view_box(cell: Tuple[float, float, float, float], params: dict
              ) -> Tuple[float, float, float, float]:
    """Map a box in original-slice pixels into a view's pixel coordinates.

    The view is ``crop_bbox`` resized to ``img_shape`` and then optionally
    flipped horizontally (x' = w - x).
    """
    x0, y0, x1, y1 = params['crop_bbox']
    h, w = params['img_shape'][:2]
    sx, sy = w / (x1 - x0), h / (y1 - y0)
    cx0, cy0, cx1, cy1 = cell
    vx0, vx1 = (cx0 - x0) * sx, (cx1 - x0) * sx
    vy0, vy1 = (cy0 - y0) * sy, (cy1 - y0) * sy
    if params.get('flip', False):
        vx0, vx1 = w - vx1, w - vx0
    return vx0, vy0, vx1, vy1


def overlap_grid_boxes(params_a: dict, params_b: dict, grid_size: int
                       ) -> Tuple[torch.Tensor, torch.Tensor, bool]:
    """G x G grid over the overlap of two views, in each view's pixels.

    Args:
        params_a, params_b: ``dict(crop_bbox=(x0, y0, x1, y1), flip=bool,
            img_shape=(h, w))`` of the two views (original-slice pixels).
        grid_size: G.

    Returns:
        boxes_a, boxes_b: (G*G, 4) float64 (x0, y0, x1, y1) in view pixels;
            cell k = row-major (row, col) of the *physical* grid, so
            boxes_a[k] and boxes_b[k] cover the same anatomy.
        valid: False if the crops do not overlap (boxes are then the full
            views, and must not be used as positives).
    """
    ax0, ay0, ax1, ay1 = params_a['crop_bbox']
    bx0, by0, bx1, by1 = params_b['crop_bbox']
    ox0, oy0 = max(ax0, bx0), max(ay0, by0)
    ox1, oy1 = min(ax1, bx1), min(ay1, by1)
    valid = ox1 > ox0 and oy1 > oy0
    if not valid:  # placeholder geometry, masked out by the caller
        ox0, oy0, ox1, oy1 = ax0, ay0, ax1, ay1
    cw, ch = (ox1 - ox0) / grid_size, (oy1 - oy0) / grid_size
    boxes_a, boxes_b = [], []
    for r in range(grid_size):
        for c in range(grid_size):
            cell = (ox0 + c * cw, oy0 + r * ch, ox0 + (c + 1) * cw,
                    oy0 + (r + 1) * ch)
            boxes_a.append(_view_box(cell, params_a))
            boxes_b.append(
                _view_box(cell, params_b) if valid else _view_box(
                    cell, params_a))
    return (torch.tensor(boxes_a, dtype=torch.float64),
            torch.tensor(boxes_b, dtype=torch.float64), bool(valid))


@MODELS.register_module()
class LocalPatchContrastiveHead(BaseModule):
    """Local feature learning head (contribution 1 of Hassanpour et al.,
    "Overcoming Dimensional Collapse in Self-supervised Contrastive Learning
    for Medical Image Segmentation", ISBI 2024, arXiv 2402.14611).

    A G x G grid of cells is laid over the region both views share
    (:meth:`grid_boxes`); each cell is RoIAlign-pooled (bilinear) from each
    view's backbone feature map (N, C, h, w) into a C-vector (:meth:`pool`);
    the algorithm's local neck (and its EMA copy on the key side) projects
    them, and they are L2-normalised. InfoNCE per query
    cell (:meth:`loss`): the positive is the same physical cell from the key
    encoder; negatives are the other cells of the same image, all cells of
    the other images of the batch, and optionally a queue of past key
    cells.

    Geometry: feature (i, j) of a stage with stride S (= input / map size)
    sees the image around its receptive-field centre
    (S*j + ``center_offset``, S*i + ``center_offset``) in view pixels, not
    S*(j + 0.5) as RoIAlign's ``aligned=True`` convention assumes: for a
    ResNet (every stride-2 conv/pool has kernel 2p+1 and padding p) the centre
    is the middle of input pixel S*j, i.e. ``center_offset=0.5`` (measured
    from gradients in the tests). The convention's error is S/2 - 1/2 pixels
    (7.5 at layer3), mirrored in a flipped view, so flip pairs would be
    matched 15 pixels apart. Images whose shared region gives cells smaller
    than ``min_cell_size`` feature pixels (in either view) are left out of
    the loss; MedMoCo logs the kept fraction as ``local_pairs``.

    Args:
        grid_size: G.
        temperature: InfoNCE temperature.
        queue_len: length of a queue of key cells used as extra negatives
            (0 = off).
        feat_dim: dimension D of the queued cells (the local neck's
            ``out_channels``); used only with a queue.
        sampling_ratio: RoIAlign samples per bin side (-1 = adaptive).
        center_offset: receptive-field centre of feature 0, in pixels.
        min_cell_size: smallest cell side, in feature pixels, for an image
            to enter the loss.
    """

    def __init__(self,
                 grid_size: int = 4,
                 temperature: float = 0.2,
                 queue_len: int = 0,
                 feat_dim: int = 128,
                 sampling_ratio: int = -1,
                 center_offset: float = 0.5,
                 min_cell_size: float = 1.0,
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg)
        self.center_offset = center_offset
        self.min_cell_size = min_cell_size
        self.grid_size = grid_size
        self.temperature = temperature
        self.queue_len = queue_len
        self.sampling_ratio = sampling_ratio
        if queue_len > 0:
            self.register_buffer(
                'queue', F.normalize(torch.randn(feat_dim, queue_len), dim=0))
            self.register_buffer('queue_ptr', torch.zeros(1, dtype=torch.long))

    def grid_boxes(self, view_params: Sequence[Sequence[dict]],
                   index_a: int = 0, index_b: int = 1,
                   feat_hw: Optional[Tuple[int, int]] = None,
                   input_hw: Optional[Tuple[int, int]] = None
                   ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Cell boxes of a batch.

        Args:
            view_params: per image, the list of view dicts.
            index_a, index_b: which views (query, key).
            feat_hw, input_hw: map and input sizes; when given, images whose
                cells are below ``min_cell_size`` feature pixels are invalid.

        Returns:
            boxes_a, boxes_b (N, G*G, 4) float64 view pixels; valid (N,) bool.
        """
        ba, bb, valid = [], [], []
        for vp in view_params:
            a, b, v = overlap_grid_boxes(vp[index_a], vp[index_b],
                                         self.grid_size)
            if v and feat_hw is not None and input_hw is not None:
                v = min(self._min_cell(a, feat_hw, input_hw),
                        self._min_cell(b, feat_hw, input_hw)) \
                    >= self.min_cell_size
            ba.append(a)
            bb.append(b)
            valid.append(v)
        return torch.stack(ba), torch.stack(bb), torch.tensor(valid)

    @staticmethod
    def _min_cell(boxes: torch.Tensor, feat_hw: Tuple[int, int],
                  input_hw: Tuple[int, int]) -> float:
        """Smallest cell side of (K, 4) view-pixel boxes, in map pixels."""
        sx, sy = input_hw[1] / feat_hw[1], input_hw[0] / feat_hw[0]
        w = (boxes[:, 2] - boxes[:, 0]) / sx
        h = (boxes[:, 3] - boxes[:, 1]) / sy
        return float(torch.minimum(w, h).min())

    def to_feature_coords(self, boxes: torch.Tensor,
                          feat_hw: Tuple[int, int],
                          input_hw: Tuple[int, int]) -> torch.Tensor:
        """View-pixel boxes -> RoIAlign(``aligned=True``) map coordinates.

        RoIAlign samples map index u = b - 1/2 for a box coordinate b; the
        feature at index j sees pixel S*j + ``center_offset``, so
        b = (x - center_offset) / S + 1/2.
        """
        b = boxes.clone()
        sx, sy = input_hw[1] / feat_hw[1], input_hw[0] / feat_hw[0]
        b[..., 0::2] = (b[..., 0::2] - self.center_offset) / sx + 0.5
        b[..., 1::2] = (b[..., 1::2] - self.center_offset) / sy + 0.5
        return b

    def pool(self, feat: torch.Tensor, boxes: torch.Tensor,
             input_hw: Tuple[int, int]) -> torch.Tensor:
        """RoIAlign each cell to one C-vector.

        Args:
            feat: (N, C, h, w) feature map of the views.
            boxes: (N, K, 4) boxes in view pixels (x0, y0, x1, y1).
            input_hw: (H, W) of the network input the map was computed from.

        Returns:
            (N, K, C).
        """
        n, c, fh, fw = feat.shape
        k = boxes.shape[1]
        # Separate x/y scales (roi_align's spatial_scale is a single float).
        b = self.to_feature_coords(
            boxes.to(device=feat.device, dtype=torch.float64), (fh, fw),
            input_hw)
        idx = torch.arange(n, device=feat.device, dtype=torch.float64)
        rois = torch.cat([idx.view(n, 1, 1).expand(n, k, 1), b], dim=-1)
        pooled = roi_align(
            feat,
            rois.view(-1, 5).to(feat.dtype),
            output_size=1,
            spatial_scale=1.0,
            sampling_ratio=self.sampling_ratio,
            aligned=True)
        return pooled.view(n, k, c)

    def loss(self, q: torch.Tensor, k: torch.Tensor,
             valid: torch.Tensor) -> torch.Tensor:
        """InfoNCE over cells.

        Args:
            q: (N, K, D) normalised query cells (with grad).
            k: (N, K, D) normalised key cells (no grad), same physical cells.
            valid: (N,) bool, images whose views overlap.

        Returns:
            scalar loss; exactly 0 (but connected to ``q``'s graph, so DDP
            sees every parameter used) when no image is valid.
        """
        valid = valid.to(q.device)
        if not bool(valid.any()):
            return q.sum() * 0.0
        qv = q[valid].reshape(-1, q.shape[-1])
        kv = k[valid].reshape(-1, k.shape[-1]).detach()
        # Row i: the positive is key i, every other key cell in the batch
        # (same image or not) is a negative.
        logits = qv @ kv.t()
        if self.queue_len > 0:
            logits = torch.cat(
                [logits, qv @ self.queue.clone().detach()], dim=1)
        logits = logits / self.temperature
        labels = torch.arange(qv.shape[0], device=q.device)
        loss = F.cross_entropy(logits, labels)
        if self.queue_len > 0 and self.training:
            self._enqueue(kv)
        return loss

    @torch.no_grad()
    def _enqueue(self, keys: torch.Tensor) -> None:
        """Ring-buffer write of key cells (variable count, wraps around)."""
        n = min(keys.shape[0], self.queue_len)
        keys = keys[-n:]
        ptr = int(self.queue_ptr)
        idx = (torch.arange(n, device=keys.device) + ptr) % self.queue_len
        self.queue[:, idx] = keys.t().to(self.queue.dtype)
        self.queue_ptr[0] = (ptr + n) % self.queue_len
