"""VolumeDiceMetric: 3D Dice and HD95 per organ per volume from 2D slice
predictions.

Each slice is identified by its image stem ``<case>_<z:04d>`` (DESIGN.md);
``case = stem.rsplit('_', 1)[0]``, ``z = int(stem.rsplit('_', 1)[1])``.

``process`` stores, per slice, only the per-class voxel counts
(intersection, predicted, ground truth) -- a few hundred bytes -- so results
can be gathered across ranks by :class:`mmengine.evaluator.BaseMetric`.
``compute_metrics`` sums them per case, which gives exactly the 3D Dice of the
reassembled volume (Dice only depends on these three counts).

Conventions (per case c, organ k; background and ``ignore_index`` excluded):

* Dice = 2|P∩G| / (|P| + |G|) over all voxels of the case;
* organ absent in GT **and** prediction → excluded (NaN) from every mean,
  for Dice and HD95 alike;
* **missed** organ (present in GT, absent in the prediction) → Dice 0 and
  HD95 = the penalty below; counted in ``missed_organs``;
* **false-positive** organ (absent in GT, predicted) → Dice 0 and HD95 = the
  penalty; counted in ``false_positive_organs`` (separately).

HD95 (``hd95=True``) follows MONAI's
``compute_hausdorff_distance(percentile=95)`` (``monai/metrics/
hausdorff_distance.py``, ``utils.get_mask_edges`` /
``get_surface_distance``): surface = mask XOR its binary erosion with the
6-neighbour cross (``scipy.ndimage.generate_binary_structure(3, 1)``;
outside the volume counts as background), distances = Euclidean distance
transform with the volume spacing (mm) from each surface voxel of one mask to
the nearest surface voxel of the other, HD95 = max of the two directed 95th
percentiles (linear interpolation, as ``torch.quantile``). Spacing comes from
``<data_root>/meta/<case>.json`` (canonical [sx, sy, sz]; a slice image is
(Y, X), so the stacked (Y, X, Z) volume has spacing (sy, sx, sz)); slices are
stacked by z, missing z zero-filled. Where one mask is empty MONAI returns
NaN (its distances are all inf, and the 95th percentile of infs is NaN);
this metric uses a finite **penalty: the diagonal of the evaluated volume in
mm**, ``sqrt((Y sy)^2 + (X sx)^2 + (Z sz)^2)`` (no two voxels are farther
apart), so a missed organ raises mHD95 instead of vanishing from it.

HD95 memory: a volume's masks are held (compressed) only until its slices
are complete (:class:`~.hd95_stream.StreamingHD95`).

Averaging (one order for both headline means): ``mDice`` and ``mHD95`` = mean
over cases of the case's mean over its non-excluded organs (per volume first,
"mean over the 13 organs computed per volume"). The per-organ breakdown
``Dice.<organ>`` / ``HD95.<organ>`` = mean over the cases where the organ is
not excluded. Dice in percent, HD95 in mm.

A per-organ table is printed to the log and everything (per-case, per-organ)
is written as JSON (:class:`~.volume_scores.VolumeScores`) to ``out_file``
(or ``<log dir>/volume_dice.json`` when a Runner logger exists and
``out_file`` is None).
"""
import os
import os.path as osp
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger

from medssl.registry import METRICS
from .hd95_stream import StreamingHD95
from .volume_measures import dice_from_counts, slice_case_and_index
from .volume_scores import VolumeScores

__all__ = ['VolumeDiceMetric']


@METRICS.register_module()
class VolumeDiceMetric(BaseMetric):
    """3D Dice per organ and volume from slice-wise segmentation.

    Args:
        num_classes (int, optional): number of classes including background;
            defaults to ``len(dataset_meta['classes'])``.
        ignore_index (int): label ignored in the GT. Defaults to 255.
        background_index (int): class excluded from the means. Defaults to 0.
        hd95 (bool): also compute HD95 in mm (needs
            ``<data_root>/meta/<case>.json``; a volume's masks are kept
            only until its slices are complete). Defaults to False.
        data_root (str, optional): where ``meta/`` lives; defaults to the
            parent of the slice's ``img_dir``.
        out_file (str, optional): JSON output path.
        pred_dir (str, optional): also write each predicted label slice as a
            uint8 PNG ``<pred_dir>/<case>_<z>.png``; refused if it is (or
            lies in) the folder of the input slices or their labels.
        collect_device, prefix, collect_dir: see :class:`BaseMetric`.

    Metrics: ``mDice``, ``Dice.<organ>``, ``missed_organs``,
    ``false_positive_organs``, ``num_cases`` and, with ``hd95``, ``mHD95``
    and ``HD95.<organ>`` (conventions in the module docstring).
    """
    default_prefix = ''

    def __init__(self,
                 num_classes: Optional[int] = None,
                 ignore_index: int = 255,
                 background_index: int = 0,
                 hd95: bool = False,
                 data_root: Optional[str] = None,
                 out_file: Optional[str] = None,
                 pred_dir: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix,
                         collect_dir=collect_dir)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.background_index = background_index
        self.hd95 = hd95
        self.data_root = data_root
        self.out_file = out_file
        self.pred_dir = pred_dir
        self._reset()

    def _reset(self) -> None:
        #: the HD95 of the volumes seen so far (made at the first slice)
        self.hd95_store: Optional[StreamingHD95] = None
        self._pred_dir_checked = False

    # ------------------------------------------------------------- process
    def _num_classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if self.dataset_meta and 'classes' in self.dataset_meta:
            return len(self.dataset_meta['classes'])
        raise ValueError('VolumeDiceMetric needs num_classes or '
                         'dataset_meta["classes"]')

    def _organs(self) -> List[int]:
        return [k for k in range(self._num_classes())
                if k != self.background_index]

    def process(self, data_batch, data_samples: Sequence[dict]) -> None:
        n = self._num_classes()
        for ds in data_samples:
            pred = ds['pred_sem_seg']['data'].squeeze()
            gt = ds['gt_sem_seg']['data'].squeeze().to(pred)
            if pred.shape != gt.shape:
                raise ValueError(f'prediction {tuple(pred.shape)} and GT '
                                 f'{tuple(gt.shape)} differ for '
                                 f'{ds["img_path"]}')
            valid = gt != self.ignore_index
            p, g = pred[valid].long(), gt[valid].long()
            inter = torch.bincount(p[p == g], minlength=n)[:n]
            pc = torch.bincount(p.clamp(0, n), minlength=n + 1)[:n]
            gc = torch.bincount(g.clamp(0, n), minlength=n + 1)[:n]
            case, z = slice_case_and_index(ds['img_path'])
            if self.pred_dir:
                import cv2
                self._check_pred_dir(ds)
                os.makedirs(self.pred_dir, exist_ok=True)
                cv2.imwrite(
                    osp.join(self.pred_dir,
                             osp.splitext(osp.basename(ds['img_path']))[0] +
                             '.png'),
                    pred.cpu().numpy().astype(np.uint8))
            res = dict(case=case, z=z, img_path=ds['img_path'],
                       inter=inter.cpu().numpy().astype(np.int64),
                       pred=pc.cpu().numpy().astype(np.int64),
                       gt=gc.cpu().numpy().astype(np.int64))
            self.results.append(res)
            if self.hd95:
                gt_np = gt.cpu().numpy()
                pred_np = pred.cpu().numpy()
                pred_np = np.where(gt_np == self.ignore_index, 0, pred_np)
                gt_np = np.where(gt_np == self.ignore_index, 0, gt_np)
                self._hd95().add(case, z, ds['img_path'],
                                 pred_np.astype(np.uint8),
                                 gt_np.astype(np.uint8))

    def _check_pred_dir(self, ds) -> None:
        """Refuse (once) a ``pred_dir`` that is the folder of the input
        slices or of their ground truth: PNGs named like the slices would
        overwrite the labels."""
        if self._pred_dir_checked:
            return
        from medssl.utils.output_guard import refuse_inside
        refuse_inside(self.pred_dir, [
            ('image folder', osp.dirname(ds['img_path'])),
            ('label folder', osp.dirname(ds.get('seg_map_path') or '')
             or None)])
        self._pred_dir_checked = True

    def evaluate(self, size: int) -> dict:
        """:meth:`BaseMetric.evaluate` after the pending volumes' HD95."""
        try:
            if self.hd95:
                self._hd95().finish()
            return super().evaluate(size)
        finally:
            self._reset()

    def _hd95(self) -> StreamingHD95:
        # made at the first slice, or at evaluate on a rank that saw none
        if self.hd95_store is None:
            self.hd95_store = StreamingHD95(self._organs(), self.data_root)
        return self.hd95_store

    # ------------------------------------------------------------- compute
    def _class_names(self, n: int) -> List[str]:
        classes = (self.dataset_meta or {}).get('classes')
        if classes and len(classes) >= n:
            return list(classes[:n])
        return [f'class{i}' for i in range(n)]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        names = self._class_names(self._num_classes())
        organs = self._organs()
        if self.hd95 and get_world_size() == 1:
            # compute_metrics called without evaluate (in a distributed run
            # evaluate has done it on every rank: collectives)
            self._hd95().finish()
        per_case = defaultdict(list)
        for r in results:
            per_case[r['case']].append(r)
        cases = sorted(per_case)
        shape = (len(cases), len(organs))
        scores = VolumeScores(cases, names, organs, np.full(shape, np.nan),
                              np.full(shape, np.nan) if self.hd95 else None,
                              np.full(shape, '', dtype=object))
        for i, c in enumerate(cases):
            self._score_case(scores, i, per_case[c])
        metrics = scores.metrics()
        scores.log_table(metrics)
        path = self._out_path()
        if path:
            scores.write_json(path, metrics)
        return dict(metrics)

    def _score_case(self, scores: VolumeScores, i: int,
                    slices: List[dict]) -> None:
        """Row ``i`` of ``scores`` from the case's per-slice counts."""
        case, organs = scores.cases[i], scores.organs
        zs = [s['z'] for s in slices]
        if len(set(zs)) != len(zs):
            raise ValueError(f'case {case}: duplicate slice indices; are '
                             'results from several datasets mixed?')
        inter, pred, gt = (sum(s[k] for s in slices)
                           for k in ('inter', 'pred', 'gt'))
        scores.dice[i] = dice_from_counts(inter, pred, gt)[organs]
        gt_in, pred_in = gt[organs] > 0, pred[organs] > 0
        scores.status[i][gt_in & ~pred_in] = 'missed'
        scores.status[i][~gt_in & pred_in] = 'false_positive'
        if scores.hd is not None:
            done = self._hd95().done
            if case not in done:
                raise ValueError(f'case {case}: no HD95 (its masks were '
                                 'not processed on any rank)')
            scores.hd[i] = done[case]

    def _out_path(self) -> Optional[str]:
        if self.out_file:
            return self.out_file
        logger = MMLogger.get_current_instance()
        log_file = getattr(logger, 'log_file', None) or getattr(
            logger, '_log_file', None)
        if log_file:
            return osp.join(osp.dirname(log_file), 'volume_dice.json')
        return None
