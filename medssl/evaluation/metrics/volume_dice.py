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

HD95 memory: a volume's HD95 is computed as soon as all its slices have
been processed -- ``meta/<case>.json`` lists them (``slices``) -- and its
masks are dropped; only the incomplete volumes' slices are kept, zlib-
compressed (label masks compress ~20-50x). Without a ``slices`` list, or
when a distributed sampler spreads a volume over several ranks, the leftover
slices are regrouped at ``evaluate`` one volume at a time (gathered on the
rank that owns the volume, ``gather_object``), never all at once on rank 0.

Averaging (one order for both headline means): ``mDice`` and ``mHD95`` = mean
over cases of the case's mean over its non-excluded organs (per volume first,
"mean over the 13 organs computed per volume"). The per-organ breakdown
``Dice.<organ>`` / ``HD95.<organ>`` = mean over the cases where the organ is
not excluded. Dice in percent, HD95 in mm.

A per-organ table is printed to the log and everything (per-case, per-organ)
is written as JSON to ``out_file`` (or ``<log dir>/volume_dice.json`` when a
Runner logger exists and ``out_file`` is None).
"""
import json
import os
import os.path as osp
import zlib
from collections import OrderedDict, defaultdict
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from mmengine.dist import (all_gather_object, gather_object, get_rank,
                           get_world_size)
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log

from medssl.registry import METRICS

__all__ = ['VolumeDiceMetric', 'slice_case_and_index', 'dice_from_counts',
           'surface_mask', 'hd95_mm', 'volume_diagonal_mm']


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


def surface_mask(mask: np.ndarray) -> np.ndarray:
    """Surface voxels as MONAI's ``get_mask_edges``: ``mask XOR
    binary_erosion(mask)`` with scipy's default structuring element (the
    cross: face neighbours only), outside the array = background."""
    from scipy import ndimage
    mask = np.asarray(mask, dtype=bool)
    cross = ndimage.generate_binary_structure(mask.ndim, 1)
    return mask ^ ndimage.binary_erosion(mask, structure=cross,
                                         border_value=0)


def hd95_mm(pred: np.ndarray, gt: np.ndarray,
            spacing: Sequence[float]) -> float:
    """95 % Hausdorff distance (mm) between two boolean masks, as MONAI's
    ``compute_hausdorff_distance(percentile=95)`` with ``spacing``; NaN if
    either mask is empty (as MONAI; the metric applies its penalty).

    The masks are cropped to the bounding box of their union plus one voxel
    (as MONAI; exact: every surface voxel lies inside the box).
    """
    from scipy import ndimage
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape or len(spacing) != pred.ndim:
        raise ValueError(f'hd95_mm: shapes {pred.shape} / {gt.shape} and '
                         f'spacing {list(spacing)} do not match')
    if not pred.any() or not gt.any():
        return float('nan')
    nz = np.nonzero(pred | gt)
    box = tuple(
        slice(max(int(i.min()) - 1, 0), int(i.max()) + 2) for i in nz)
    sp, sg = surface_mask(pred[box]), surface_mask(gt[box])
    d_pg = ndimage.distance_transform_edt(~sg, sampling=spacing)[sp]
    d_gp = ndimage.distance_transform_edt(~sp, sampling=spacing)[sg]
    return float(max(np.percentile(d_pg, 95), np.percentile(d_gp, 95)))


def volume_diagonal_mm(shape: Sequence[int],
                       spacing: Sequence[float]) -> float:
    """Physical diagonal of a volume: the HD95 penalty of a missed or
    false-positive organ."""
    return float(np.sqrt(sum((n * s)**2 for n, s in zip(shape, spacing))))


def _mean_per_case(values: np.ndarray) -> Tuple[np.ndarray, float]:
    """(cases, organs) with NaN = excluded -> per-case means and their mean
    (NaN where nothing is defined)."""
    with np.errstate(invalid='ignore'):
        case_mean = np.array([
            np.nanmean(row) if np.isfinite(row).any() else np.nan
            for row in values
        ])
    mean = float(np.nanmean(case_mean)) if np.isfinite(
        case_mean).any() else float('nan')
    return case_mean, mean


def _mean_per_organ(values: np.ndarray) -> np.ndarray:
    return np.array([
        np.nanmean(col) if np.isfinite(col).any() else np.nan
        for col in values.T
    ])


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
        self._reset_hd95()

    def _reset_hd95(self) -> None:
        # case -> {z: (shape, zlib(pred), zlib(gt), img_path)}: slices of
        # volumes not complete yet
        self._pending: Dict[str, Dict[int, tuple]] = {}
        # case -> HD95 per organ (mm) of the volumes already evaluated
        self._hd95_done: Dict[str, np.ndarray] = {}
        self._case_meta: Dict[str, dict] = {}
        self._pred_dir_checked = False
        #: most mask bytes held at once (compressed): a measurable bound
        self.peak_pending_bytes = 0

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
                self._add_masks(case, z, ds['img_path'],
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

    # ------------------------------------------------------------- HD95
    def _meta(self, case: str, img_path: str) -> dict:
        """Spacing (stacked (Y, X, Z) order) and the slice indices of the
        case from ``meta/<case>.json``, read once per case."""
        if case not in self._case_meta:
            root = self.data_root or osp.dirname(osp.dirname(img_path))
            path = osp.join(root, 'meta', f'{case}.json')
            try:
                with open(path) as f:
                    meta = json.load(f)
                sx, sy, sz = meta['spacing']
            except (OSError, ValueError, KeyError, TypeError) as e:
                raise ValueError(f'VolumeDiceMetric(hd95=True) needs the '
                                 f'spacing of case {case} in {path}: '
                                 f'{type(e).__name__}: {e}') from e
            slices = meta.get('slices')
            self._case_meta[case] = dict(
                spacing=[sy, sx, sz],
                slices=None if slices is None else {int(z)
                                                    for z in slices})
        return self._case_meta[case]

    def _add_masks(self, case: str, z: int, img_path: str,
                   pred: np.ndarray, gt: np.ndarray) -> None:
        """Keep one slice's masks (compressed) until its volume is complete,
        then compute the volume's HD95 and drop them."""
        if case in self._hd95_done:  # a padded duplicate of a done volume
            return
        meta = self._meta(case, img_path)
        slices = self._pending.setdefault(case, {})
        slices.setdefault(z, (pred.shape, zlib.compress(pred.tobytes(), 1),
                              zlib.compress(gt.tobytes(), 1), img_path))
        self.peak_pending_bytes = max(self.peak_pending_bytes,
                                      self.pending_bytes())
        if meta['slices'] is not None and meta['slices'] <= slices.keys():
            self._hd95_done[case] = self._case_hd95(
                case, self._pending.pop(case))

    def pending_bytes(self) -> int:
        """Bytes of masks held for volumes not evaluated yet."""
        return sum(len(p) + len(g) for slices in self._pending.values()
                   for _, p, g, _ in slices.values())

    def _finish_hd95(self) -> None:
        """HD95 of the volumes still pending (no ``slices`` list, or spread
        over ranks), one volume at a time; then every rank holds every
        volume's HD95 in ``_hd95_done``."""
        world = get_world_size()
        if world == 1:
            for case in sorted(self._pending):
                self._hd95_done[case] = self._case_hd95(
                    case, self._pending.pop(case))
            return
        done = set().union(*all_gather_object(sorted(self._hd95_done)))
        todo = sorted(set().union(*all_gather_object(sorted(
            self._pending))) - done)
        rank = get_rank()
        for i, case in enumerate(todo):
            owner = i % world  # spread the work over the ranks
            parts = gather_object(self._pending.pop(case, {}), dst=owner)
            if rank == owner:
                slices = {}
                for part in parts:
                    for z, s in part.items():
                        slices.setdefault(z, s)  # padded duplicates
                self._hd95_done[case] = self._case_hd95(case, slices)
        self._pending.clear()
        merged = {}
        for part in all_gather_object(self._hd95_done):
            merged.update(part)
        self._hd95_done = merged

    def evaluate(self, size: int) -> dict:
        """:meth:`BaseMetric.evaluate` after the pending volumes' HD95."""
        try:
            if self.hd95:
                self._finish_hd95()
            return super().evaluate(size)
        finally:
            self._reset_hd95()

    # ------------------------------------------------------------- compute
    def _class_names(self, n: int) -> List[str]:
        classes = (self.dataset_meta or {}).get('classes')
        if classes and len(classes) >= n:
            return list(classes[:n])
        return [f'class{i}' for i in range(n)]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        n = self._num_classes()
        names = self._class_names(n)
        organs = [k for k in range(n) if k != self.background_index]
        per_case = defaultdict(lambda: dict(inter=0, pred=0, gt=0, slices=[]))
        if self.hd95 and get_world_size() == 1:
            # compute_metrics called without evaluate (in a distributed run
            # evaluate has done it on every rank: collectives)
            self._finish_hd95()
        for r in results:
            acc = per_case[r['case']]
            acc['inter'] = acc['inter'] + r['inter']
            acc['pred'] = acc['pred'] + r['pred']
            acc['gt'] = acc['gt'] + r['gt']
            acc['slices'].append(r)
        cases = sorted(per_case)
        dice = np.full((len(cases), len(organs)), np.nan)
        hd = np.full((len(cases), len(organs)), np.nan)
        # 'missed' (GT only) / 'false_positive' (prediction only) per cell
        status = np.full((len(cases), len(organs)), '', dtype=object)
        for i, c in enumerate(cases):
            acc = per_case[c]
            zs = [s['z'] for s in acc['slices']]
            if len(set(zs)) != len(zs):
                raise ValueError(f'case {c}: duplicate slice indices; are '
                                 'results from several datasets mixed?')
            dice[i] = dice_from_counts(acc['inter'], acc['pred'],
                                       acc['gt'])[organs]
            gt_in = np.asarray(acc['gt'])[organs] > 0
            pred_in = np.asarray(acc['pred'])[organs] > 0
            status[i][gt_in & ~pred_in] = 'missed'
            status[i][~gt_in & pred_in] = 'false_positive'
            if self.hd95:
                if c not in self._hd95_done:
                    raise ValueError(f'case {c}: no HD95 (its masks were '
                                     'not processed on any rank)')
                hd[i] = self._hd95_done[c]

        case_mean, mdice = _mean_per_case(dice)
        organ_mean = _mean_per_organ(dice)
        metrics = OrderedDict()
        metrics['mDice'] = round(100 * mdice, 2)
        for j, k in enumerate(organs):
            metrics[f'Dice.{names[k]}'] = round(100 * float(organ_mean[j]), 2)
        hd_case_mean = hd_organ = None
        if self.hd95:
            hd_case_mean, mhd = _mean_per_case(hd)
            hd_organ = _mean_per_organ(hd)
            metrics['mHD95'] = round(mhd, 2)
            for j, k in enumerate(organs):
                metrics[f'HD95.{names[k]}'] = round(float(hd_organ[j]), 2)
        metrics['missed_organs'] = int((status == 'missed').sum())
        metrics['false_positive_organs'] = int(
            (status == 'false_positive').sum())
        metrics['num_cases'] = len(cases)

        self._log_table(names, organs, organ_mean, dice, hd_organ, status,
                        metrics)
        self._dump(cases, names, organs, dice, case_mean, hd, hd_case_mean,
                   status, metrics)
        return dict(metrics)

    def _case_hd95(self, case: str, slices: Dict[int, tuple]) -> np.ndarray:
        """HD95 per organ of one volume from its ``{z: (shape, zlib(pred),
        zlib(gt), img_path)}``: slices stacked by z, missing z zero-filled
        (the only moment a full volume is held)."""
        organs = [k for k in range(self._num_classes())
                  if k != self.background_index]
        zs = sorted(slices)
        z0, depth = zs[0], zs[-1] - zs[0] + 1
        h, w = slices[zs[0]][0]
        pred = np.zeros((h, w, depth), np.uint8)
        gt = np.zeros((h, w, depth), np.uint8)
        for z in zs:
            shape, p, g, path = slices[z]
            if tuple(shape) != (h, w):
                raise ValueError(f'case {case}: slice {path} is {shape}, '
                                 f'other slices {(h, w)}')
            pred[..., z - z0] = np.frombuffer(zlib.decompress(p),
                                              np.uint8).reshape(shape)
            gt[..., z - z0] = np.frombuffer(zlib.decompress(g),
                                            np.uint8).reshape(shape)
        spacing = self._meta(case, slices[z0][3])['spacing']
        penalty = volume_diagonal_mm(gt.shape, spacing)
        out = np.full(len(organs), np.nan)
        for j, k in enumerate(organs):
            p, g = pred == k, gt == k
            p_any, g_any = p.any(), g.any()
            if p_any and g_any:
                out[j] = hd95_mm(p, g, spacing)
            elif p_any or g_any:  # missed or false positive: MONAI's NaN
                out[j] = penalty
        return out

    def _log_table(self, names, organs, organ_mean, dice, hd_organ, status,
                   metrics):
        from prettytable import PrettyTable
        table = PrettyTable()
        table.field_names = ['organ', 'Dice (%)', 'cases'] + (
            ['HD95 (mm)'] if hd_organ is not None else []) + [
                'missed', 'false pos.']
        for j, k in enumerate(organs):
            row = [names[k], f'{100 * organ_mean[j]:.2f}',
                   int(np.isfinite(dice[:, j]).sum())]
            if hd_organ is not None:
                row.append(f'{hd_organ[j]:.2f}')
            row += [int((status[:, j] == 'missed').sum()),
                    int((status[:, j] == 'false_positive').sum())]
            table.add_row(row)
        summary = f'mDice (per volume): {metrics["mDice"]:.2f}'
        if 'mHD95' in metrics:
            summary += f'  mHD95 (per volume): {metrics["mHD95"]:.2f} mm'
        summary += (f'  missed organ-cases: {metrics["missed_organs"]}'
                    f'  false-positive organ-cases: '
                    f'{metrics["false_positive_organs"]}')
        what = 'Dice and HD95' if hd_organ is not None else 'Dice'
        print_log(f'per-organ 3D {what} over {metrics["num_cases"]} '
                  f'volumes:\n{table.get_string()}\n{summary}',
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

    def _dump(self, cases, names, organs, dice, case_mean, hd, hd_case_mean,
              status, metrics):
        path = self._out_path()
        if not path:
            return

        def f(x, scale=100.):
            return None if not np.isfinite(x) else round(float(x) * scale, 4)

        def per_case(i):
            out = dict(mean=f(case_mean[i]),
                       dice={names[k]: f(dice[i, j])
                             for j, k in enumerate(organs)},
                       missed=[names[k] for j, k in enumerate(organs)
                               if status[i, j] == 'missed'],
                       false_positive=[
                           names[k] for j, k in enumerate(organs)
                           if status[i, j] == 'false_positive'])
            if self.hd95:
                out['hd95_mean_mm'] = f(hd_case_mean[i], 1.)
                out['hd95_mm'] = {names[k]: f(hd[i, j], 1.)
                                  for j, k in enumerate(organs)}
            return out

        out = dict(
            mDice=metrics['mDice'],
            metrics=dict(metrics),
            convention='3D Dice / HD95 per volume; organ absent in GT and '
            'prediction -> null (excluded); missed (GT only) or false '
            'positive (prediction only) -> Dice 0 and HD95 = volume diagonal '
            '(mm); means over volumes of the per-volume mean over organs',
            organs=[names[k] for k in organs],
            per_case={c: per_case(i) for i, c in enumerate(cases)})
        d = osp.dirname(osp.abspath(path))
        os.makedirs(d, exist_ok=True)
        with open(path, 'w') as fh:
            json.dump(out, fh, indent=2)
        print_log(f'VolumeDiceMetric: wrote {path}', logger='current')
