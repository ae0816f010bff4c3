"""The per-volume score tables of :class:`VolumeDiceMetric` and their three
readouts: the headline metrics, the per-organ log table and the JSON file
(conventions in :mod:`medssl.evaluation.metrics.volume_dice`)."""
import json
from collections import OrderedDict
from dataclasses import dataclass
from typing import Dict, List, Optional

import numpy as np
from mmengine.logging import print_log

from medssl.utils.atomic import atomic_write_bytes
from .volume_measures import mean_per_case, mean_per_organ

__all__ = ['VolumeScores']

MISSED, FALSE_POSITIVE = 'missed', 'false_positive'


@dataclass
class VolumeScores:
    """Scores of ``cases`` x ``organs``; NaN = organ excluded.

    Attributes:
        cases: case ids (rows).
        organs: scored label values (columns); ``names[k]`` names value k.
        dice: Dice in [0, 1].
        hd: HD95 in mm, or None without HD95.
        status: ``'missed'`` (GT only), ``'false_positive'`` (prediction
            only) or ``''`` per cell.
    """
    cases: List[str]
    names: List[str]
    organs: List[int]
    dice: np.ndarray
    hd: Optional[np.ndarray]
    status: np.ndarray

    def count(self, what: str) -> np.ndarray:
        """Cases per organ with status ``what``."""
        return (self.status == what).sum(0)

    def metrics(self) -> Dict[str, float]:
        """``mDice``, ``Dice.<organ>`` (%), ``mHD95``, ``HD95.<organ>``
        (mm), the missed / false-positive counts and ``num_cases``."""
        out = OrderedDict(
            mDice=round(100 * float(mean_per_case(self.dice)[1]), 2))
        for j, v in enumerate(mean_per_organ(self.dice)):
            out[f'Dice.{self.names[self.organs[j]]}'] = round(100 * float(v), 2)
        if self.hd is not None:
            out['mHD95'] = round(float(mean_per_case(self.hd)[1]), 2)
            for j, v in enumerate(mean_per_organ(self.hd)):
                out[f'HD95.{self.names[self.organs[j]]}'] = round(float(v), 2)
        out['missed_organs'] = int(self.count(MISSED).sum())
        out['false_positive_organs'] = int(self.count(FALSE_POSITIVE).sum())
        out['num_cases'] = len(self.cases)
        return out

    def log_table(self, metrics: Dict[str, float]) -> None:
        """The per-organ table and the means, to the current logger."""
        from prettytable import PrettyTable
        table = PrettyTable()
        hd_organ = None if self.hd is None else mean_per_organ(self.hd)
        table.field_names = ['organ', 'Dice (%)', 'cases'] + (
            ['HD95 (mm)'] if hd_organ is not None else []) + [
                'missed', 'false pos.']
        organ_mean = mean_per_organ(self.dice)
        missed, fp = self.count(MISSED), self.count(FALSE_POSITIVE)
        for j, k in enumerate(self.organs):
            row = [self.names[k], f'{100 * organ_mean[j]:.2f}',
                   int(np.isfinite(self.dice[:, j]).sum())]
            if hd_organ is not None:
                row.append(f'{hd_organ[j]:.2f}')
            table.add_row(row + [int(missed[j]), int(fp[j])])
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

    def _case(self, i: int, dice_mean: np.ndarray,
              hd_mean: Optional[np.ndarray]) -> dict:
        """Case ``i``'s JSON entry; ``*_mean``: the per-case means."""
        organs = [self.names[k] for k in self.organs]
        out = dict(
            mean=_num(dice_mean[i]),
            dice=dict(zip(organs, map(_num, self.dice[i]))),
            missed=[o for o, s in zip(organs, self.status[i]) if s == MISSED],
            false_positive=[o for o, s in zip(organs, self.status[i])
                            if s == FALSE_POSITIVE])
        if self.hd is not None:
            out['hd95_mean_mm'] = _num(hd_mean[i], 1.)
            out['hd95_mm'] = {o: _num(v, 1.) for o, v in zip(organs,
                                                             self.hd[i])}
        return out

    def write_json(self, path: str, metrics: Dict[str, float]) -> None:
        """Everything, per case and per organ, to ``path`` (atomically)."""
        dice_mean = mean_per_case(self.dice)[0]
        hd_mean = None if self.hd is None else mean_per_case(self.hd)[0]
        out = dict(
            mDice=metrics['mDice'],
            metrics=dict(metrics),
            convention='3D Dice / HD95 per volume; organ absent in GT and '
            'prediction -> null (excluded); missed (GT only) or false '
            'positive (prediction only) -> Dice 0 and HD95 = volume diagonal '
            '(mm); means over volumes of the per-volume mean over organs',
            organs=[self.names[k] for k in self.organs],
            per_case={c: self._case(i, dice_mean, hd_mean)
                      for i, c in enumerate(self.cases)})
        atomic_write_bytes(path, json.dumps(out, indent=2).encode(),
                           durable=False)
        print_log(f'VolumeDiceMetric: wrote {path}', logger='current')


def _num(x: float, scale: float = 100.) -> Optional[float]:
    """A JSON number (Dice in %, HD95 in mm), None where excluded."""
    return None if not np.isfinite(x) else round(float(x) * scale, 4)
