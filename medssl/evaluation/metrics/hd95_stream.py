"""HD95 of whole volumes from slices that arrive one at a time, in any order,
possibly on several ranks, without holding every volume's masks.

A volume's HD95 is computed as soon as all its slices have been added --
``<data_root>/meta/<case>.json`` lists them (``slices``) -- and its masks
are dropped; only the incomplete volumes' slices are kept, zlib-compressed
(label masks compress ~20-50x). Without a ``slices`` list, or when a
distributed sampler spreads a volume over several ranks, :meth:`finish`
regroups the leftover slices one volume at a time (gathered on the rank that
owns the volume, ``gather_object``), never all at once on rank 0.
"""
import json
import os.path as osp
import zlib
from typing import Dict, List, Optional

import numpy as np
from mmengine.dist import (all_gather_object, gather_object, get_rank,
                           get_world_size)

from .volume_measures import hd95_mm, volume_diagonal_mm

__all__ = ['StreamingHD95']


class StreamingHD95:
    """HD95 per organ of every volume, from its slices.

    Args:
        organs: the label values scored (background excluded).
        data_root: where ``meta/<case>.json`` lives; None: the parent of
            each slice's ``img_dir``.

    Attributes:
        pending: ``case -> {z: (shape, zlib(pred), zlib(gt), img_path)}``,
            the slices of the volumes not complete yet.
        done: ``case -> HD95 per organ (mm)`` of the evaluated volumes.
        peak_pending_bytes: most mask bytes held at once (compressed): a
            measurable bound.
    """

    def __init__(self, organs: List[int],
                 data_root: Optional[str] = None) -> None:
        self.organs = list(organs)
        self.data_root = data_root
        self.pending: Dict[str, Dict[int, tuple]] = {}
        self.done: Dict[str, np.ndarray] = {}
        self.peak_pending_bytes = 0
        self._case_meta: Dict[str, dict] = {}

    def meta(self, case: str, img_path: str) -> dict:
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
            # a slice image is (Y, X): the stacked volume is (Y, X, Z)
            self._case_meta[case] = dict(
                spacing=[sy, sx, sz],
                slices=None if slices is None else {int(z)
                                                    for z in slices})
        return self._case_meta[case]

    def add(self, case: str, z: int, img_path: str, pred: np.ndarray,
            gt: np.ndarray) -> None:
        """Keep one slice's uint8 masks (compressed) until its volume is
        complete, then compute the volume's HD95 and drop them."""
        if case in self.done:  # a padded duplicate of a done volume
            return
        meta = self.meta(case, img_path)
        slices = self.pending.setdefault(case, {})
        slices.setdefault(z, (pred.shape, zlib.compress(pred.tobytes(), 1),
                              zlib.compress(gt.tobytes(), 1), img_path))
        self.peak_pending_bytes = max(self.peak_pending_bytes,
                                      self.pending_bytes())
        if meta['slices'] is not None and meta['slices'] <= slices.keys():
            self.done[case] = self.case_hd95(case, self.pending.pop(case))

    def pending_bytes(self) -> int:
        """Bytes of masks held for volumes not evaluated yet."""
        return sum(len(p) + len(g) for slices in self.pending.values()
                   for _, p, g, _ in slices.values())

    def finish(self) -> None:
        """HD95 of the volumes still pending, one volume at a time; then
        every rank holds every volume's HD95 in :attr:`done` (a collective
        call in a distributed run)."""
        world = get_world_size()
        if world == 1:
            for case in sorted(self.pending):
                self.done[case] = self.case_hd95(case,
                                                 self.pending.pop(case))
            return
        done = set().union(*all_gather_object(sorted(self.done)))
        todo = sorted(set().union(*all_gather_object(sorted(
            self.pending))) - done)
        rank = get_rank()
        for i, case in enumerate(todo):
            owner = i % world  # spread the work over the ranks
            parts = gather_object(self.pending.pop(case, {}), dst=owner)
            if rank == owner:
                slices = {}
                for part in parts:
                    for z, s in part.items():
                        slices.setdefault(z, s)  # padded duplicates
                self.done[case] = self.case_hd95(case, slices)
        self.pending.clear()
        merged = {}
        for part in all_gather_object(self.done):
            merged.update(part)
        self.done = merged

    def case_hd95(self, case: str, slices: Dict[int, tuple]) -> np.ndarray:
        """HD95 per organ of one volume from its ``{z: (shape, zlib(pred),
        zlib(gt), img_path)}``: slices stacked by z, missing z zero-filled
        (the only moment a full volume is held). A missed or false-positive
        organ gets the volume's diagonal (MONAI: NaN)."""
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
        spacing = self.meta(case, slices[z0][3])['spacing']
        penalty = volume_diagonal_mm(gt.shape, spacing)
        out = np.full(len(self.organs), np.nan)
        for j, k in enumerate(self.organs):
            p, g = pred == k, gt == k
            p_any, g_any = p.any(), g.any()
            if p_any and g_any:
                out[j] = hd95_mm(p, g, spacing)
            elif p_any or g_any:
                out[j] = penalty
        return out
