"""VolumeDiceMetric: 3D Dice per organ per volume from 2D slice predictions
(owner: downstream).

Each slice is identified by its image stem ``<case>_<z:04d>`` (DESIGN.md);
``case = stem.rsplit('_', 1)[0]``, ``z = int(stem.rsplit('_', 1)[1])``.

``process`` stores, per slice, only the per-class voxel counts
(intersection, predicted, ground truth) -- a few hundred bytes -- so results
can be gathered across ranks by :class:`mmengine.evaluator.BaseMetric`.
``compute_metrics`` sums them per case, which gives exactly the 3D Dice of the
reassembled volume (Dice only depends on these three counts).

Conventions (per case c, organ k; background and ``ignore_index`` excluded):

* Dice = 2|P∩G| / (|P| + |G|) over all voxels of the case;
* organ absent in GT **and** prediction → NaN (excluded from means);
* organ absent in GT but predicted → 0 (a false positive volume);
* organ present in GT but not predicted → 0.

Reported: ``mDice`` = mean over cases of the case's mean Dice over its
non-NaN organs (the per-volume score, "mean Dice over the 13 organs computed
per volume"); ``Dice.<organ>`` = mean over cases with a non-NaN value;
``mDice_organ`` = mean of the per-organ values. All in percent.

Optional ``hd95=True`` keeps the full masks (uint8) per slice and computes the
95th-percentile symmetric Hausdorff distance in mm (max of the two directed
95th percentiles of surface-to-surface distances, as MONAI), using
``spacing`` from ``<data_root>/meta/<case>.json`` (canonical [sx, sy, sz];
a slice image is (Y, X) so pixel spacing is (sy, sx)). Slices are stacked by z
(missing z are zero-filled). HD95 is NaN when the organ is absent in the GT or
in the prediction (counted in ``HD95_undefined``).

A per-organ table is printed to the log and everything (per-case, per-organ)
is written as JSON to ``out_file`` (or ``<log dir>/volume_dice.json`` when a
Runner logger exists and ``out_file`` is None).
"""
import json
import os
import os.path as osp
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from medssl.registry import METRICS

__all__ = ['VolumeDiceMetric', 'slice_case_and_index', 'dice_from_counts',
           'hd95_mm']


def slice_case_and_index(path: str):
    """``.../img0001_0042.npy`` (or ``.png``) -> ``('img0001', 42)``."""
    stem = osp.splitext(osp.basename(path))[0]
    case, _, z = stem.rpartition('_')
    if not case:
        raise ValueError(f'slice name {stem!r} is not <case>_<z>')
    return case, int(z)


def dice_from_counts(inter: np.ndarray, pred: np.ndarray,
                     gt: np.ndarray) -> np.ndarray:
    """Dice per class with the empty conventions above (NaN if both empty)."""
    inter, pred, gt = (np.asarray(a, dtype=np.float64) for a in (inter, pred,
                                                                 gt))
    denom = pred + gt
    with np.errstate(invalid='ignore', divide='ignore'):
        dice = np.where(denom > 0, 2 * inter / np.maximum(denom, 1), np.nan)
    return dice


def _surface(mask: np.ndarray) -> np.ndarray:
    from scipy import ndimage
    eroded = ndimage.binary_erosion(mask, structure=np.ones((3, ) * mask.ndim),
                                    border_value=0)
    return mask & ~eroded


def hd95_mm(pred: np.ndarray, gt: np.ndarray, spacing: Sequence[float]
            ) -> float:
    """95 % Hausdorff distance (mm) between two boolean masks; NaN if either
    is empty."""
    from scipy import ndimage
    pred, gt = pred.astype(bool), gt.astype(bool)
    if not pred.any() or not gt.any():
        return float('nan')
    sp, sg = _surface(pred), _surface(gt)
    dt_g = ndimage.distance_transform_edt(~sg, sampling=spacing)
    dt_p = ndimage.distance_transform_edt(~sp, sampling=spacing)
    d_pg = dt_g[sp]  # pred surface -> gt surface
    d_gp = dt_p[sg]
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))


@METRICS.register_module()
class VolumeDiceMetric(BaseMetric):
    """3D Dice per organ and volume from slice-wise segmentation.

    Args:
        num_classes (int, optional): number of classes including background;
            defaults to ``len(dataset_meta['classes'])``.
        ignore_index (int): label ignored in the GT. Defaults to 255.
        background_index (int): class excluded from the means. Defaults to 0.
        hd95 (bool): also compute HD95 in mm (keeps full masks; needs
            ``<data_root>/meta/<case>.json``). Defaults to False.
        data_root (str, optional): where ``meta/`` lives; defaults to the
            parent of the slice's ``img_dir``.
        out_file (str, optional): JSON output path.
        pred_dir (str, optional): also write each predicted label slice as a
            uint8 PNG ``<pred_dir>/<case>_<z>.png``.
        collect_device, prefix: see :class:`BaseMetric`.
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
                 **kwargs):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        self.background_index = background_index
        self.hd95 = hd95
        self.data_root = data_root
        self.out_file = out_file
        self.pred_dir = pred_dir

    # ------------------------------------------------------------- process
    def _num_classes(self) -> int:
        if self.num_classes is not None:
            return self.num_classes
        if self.dataset_meta and 'classes' in self.dataset_meta:
            return len(self.dataset_meta['classes'])
        raise ValueError('VolumeDiceMetric needs num_classes or '
                         'dataset_meta["classes"]')

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
            if self.hd95:
                gt_np = gt.cpu().numpy()
                pred_np = pred.cpu().numpy()
                pred_np = np.where(gt_np == self.ignore_index, 0, pred_np)
                gt_np = np.where(gt_np == self.ignore_index, 0, gt_np)
                res['pred_mask'] = pred_np.astype(np.uint8)
                res['gt_mask'] = gt_np.astype(np.uint8)
            self.results.append(res)

    # ------------------------------------------------------------- compute
    def _class_names(self, n: int) -> List[str]:
        classes = (self.dataset_meta or {}).get('classes')
        if classes and len(classes) >= n:
            return list(classes[:n])
        return [f'class{i}' for i in range(n)]

    def _spacing(self, case: str, img_path: str) -> List[float]:
        root = self.data_root or osp.dirname(osp.dirname(img_path))
        meta = osp.join(root, 'meta', f'{case}.json')
        with open(meta) as f:
            sx, sy, sz = json.load(f)['spacing']
        return [sy, sx, sz]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        n = self._num_classes()
        names = self._class_names(n)
        organs = [k for k in range(n) if k != self.background_index]
        per_case = defaultdict(lambda: dict(inter=0, pred=0, gt=0, slices=[]))
        for r in results:
            acc = per_case[r['case']]
            acc['inter'] = acc['inter'] + r['inter']
            acc['pred'] = acc['pred'] + r['pred']
            acc['gt'] = acc['gt'] + r['gt']
            acc['slices'].append(r)
        cases = sorted(per_case)
        dice = np.full((len(cases), len(organs)), np.nan)
        hd = np.full((len(cases), len(organs)), np.nan)
        for i, c in enumerate(cases):
            acc = per_case[c]
            zs = [s['z'] for s in acc['slices']]
            if len(set(zs)) != len(zs):
                raise ValueError(f'case {c}: duplicate slice indices; are '
                                 'results from several datasets mixed?')
            dice[i] = dice_from_counts(acc['inter'], acc['pred'],
                                       acc['gt'])[organs]
            if self.hd95:
                hd[i] = self._case_hd95(c, acc['slices'], organs)

        with np.errstate(invalid='ignore'):
            case_mean = np.array([
                np.nanmean(row) if np.isfinite(row).any() else np.nan
                for row in dice
            ])
            organ_mean = np.array([
                np.nanmean(col) if np.isfinite(col).any() else np.nan
                for col in dice.T
            ])
        mdice = float(np.nanmean(case_mean)) if np.isfinite(
            case_mean).any() else float('nan')
        metrics = OrderedDict()
        metrics['mDice'] = round(100 * mdice, 2)
        metrics['mDice_organ'] = round(
            100 * float(np.nanmean(organ_mean)), 2) if np.isfinite(
                organ_mean).any() else float('nan')
        for j, k in enumerate(organs):
            metrics[f'Dice.{names[k]}'] = round(100 * float(organ_mean[j]), 2)
        if self.hd95:
            hd_mean = np.array([
                np.nanmean(col) if np.isfinite(col).any() else np.nan
                for col in hd.T
            ])
            metrics['mHD95'] = round(float(np.nanmean(hd_mean)), 2) \
                if np.isfinite(hd_mean).any() else float('nan')
            metrics['HD95_undefined'] = int(np.isnan(hd).sum() -
                                            np.isnan(dice).sum())
        metrics['num_cases'] = len(cases)

        self._log_table(names, organs, organ_mean, dice,
                        hd if self.hd95 else None, metrics)
        self._dump(cases, names, organs, dice, case_mean, hd, metrics)
        return dict(metrics)

    def _case_hd95(self, case: str, slices: list, organs: List[int]):
        slices = sorted(slices, key=lambda s: s['z'])
        z0 = slices[0]['z']
        depth = slices[-1]['z'] - z0 + 1
        h, w = slices[0]['gt_mask'].shape
        pred = np.zeros((h, w, depth), np.uint8)
        gt = np.zeros((h, w, depth), np.uint8)
        for s in slices:
            pred[..., s['z'] - z0] = s['pred_mask']
            gt[..., s['z'] - z0] = s['gt_mask']
        spacing = self._spacing(case, slices[0]['img_path'])
        return np.array([hd95_mm(pred == k, gt == k, spacing) for k in organs])

    def _log_table(self, names, organs, organ_mean, dice, hd, metrics):
        try:
            from prettytable import PrettyTable
            table = PrettyTable()
            table.field_names = ['organ', 'Dice (%)', 'cases'] + (
                ['HD95 (mm)'] if hd is not None else [])
            for j, k in enumerate(organs):
                row = [names[k], f'{100 * organ_mean[j]:.2f}',
                       int(np.isfinite(dice[:, j]).sum())]
                if hd is not None:
                    col = hd[:, j]
                    row.append(f'{np.nanmean(col):.2f}'
                               if np.isfinite(col).any() else 'nan')
                table.add_row(row)
            text = table.get_string()
        except ImportError:  # pragma: no cover
            text = '\n'.join(f'{names[k]}: {100 * organ_mean[j]:.2f}'
                             for j, k in enumerate(organs))
        print_log(f'per-organ 3D Dice over {metrics["num_cases"]} volumes:\n'
                  + text + f'\nmDice (per volume): {metrics["mDice"]:.2f}',
                  logger='current')

    def _out_path(self) -> Optional[str]:
        if self.out_file:
            return self.out_file
        logger = MMLogger.get_current_instance()
        log_file = getattr(logger, 'log_file', None) or getattr(
            logger, '_log_file', None)
        if log_file:
            return osp.join(osp.dirname(log_file), 'volume_dice.json')
        return None

    def _dump(self, cases, names, organs, dice, case_mean, hd, metrics):
        path = self._out_path()
        if not path:
            return

        def f(x):
            return None if not np.isfinite(x) else round(float(x) * 100, 4)

        out = dict(
            mDice=metrics['mDice'],
            metrics=dict(metrics),
            convention='3D Dice per volume; organ absent in GT and prediction'
            ' -> null (excluded); absent in GT but predicted -> 0',
            organs=[names[k] for k in organs],
            per_case={
                c: dict(mean=f(case_mean[i]),
                        dice={names[k]: f(dice[i, j])
                              for j, k in enumerate(organs)},
                        **({'hd95_mm': {
                            names[k]: (None if not np.isfinite(hd[i, j]) else
                                       float(hd[i, j]))
                            for j, k in enumerate(organs)
                        }} if self.hd95 else {}))
                for i, c in enumerate(cases)
            })
        d = osp.dirname(osp.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, 'w') as fh:
            json.dump(out, fh, indent=2)
        print_log(f'VolumeDiceMetric: wrote {path}', logger='current')
