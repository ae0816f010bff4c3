"""Data-efficiency protocol reporting: CSV, summary JSON, printed table and
the score-vs-fraction plot."""
import csv
import json
import math
import os
import os.path as osp
from typing import Dict, List, Sequence

import numpy as np

from medssl.utils.atomic import atomic_write_bytes

__all__ = ['CSV_FIELDS', 'write_csv', 'read_csv', 'write_summary',
           'format_summary', 'plot_curves']

# fraction = true fraction (num_volumes / total_volumes); tested = which
# fine-tuned checkpoint was tested ('best' on val or 'last')
CSV_FIELDS = ('method', 'fraction', 'num_volumes', 'total_volumes', 'seed',
              'dice', 'tested')


def write_csv(records: Sequence[Dict], path: str) -> None:
    """One row per run, columns :data:`CSV_FIELDS`."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS,
                                extrasaction='ignore')
        writer.writeheader()
        for rec in sorted(records, key=lambda r: (r['method'], float(
                r['fraction']), int(r['seed']))):
            writer.writerow({k: rec.get(k) for k in CSV_FIELDS})


def read_csv(path: str) -> List[Dict]:
    def num(v, cast):
        return None if v in (None, '') else cast(v)

    with open(path, newline='') as f:
        return [
            dict(method=row['method'], fraction=float(row['fraction']),
                 num_volumes=num(row.get('num_volumes'), int),
                 total_volumes=num(row.get('total_volumes'), int),
                 seed=int(row['seed']), dice=float(row['dice']),
                 tested=row.get('tested') or None)
            for row in csv.DictReader(f)
        ]


def write_summary(summary: Dict, path: str) -> None:
    """:func:`summarize` output as JSON (fraction keys as strings, NaN as
    null)."""

    def clean(x):
        if isinstance(x, dict):
            return {str(k): clean(v) for k, v in x.items()}
        if isinstance(x, (list, tuple)):
            return [clean(v) for v in x]
        if isinstance(x, float) and not math.isfinite(x):
            return None
        return x

    atomic_write_bytes(path, json.dumps(clean(summary), indent=2).encode(),
                       durable=False)


def format_summary(summary: Dict, baseline: str = 'random') -> str:
    """Text table: per method and true fraction, mean ± sd, 95 % CI, n, the
    paired difference to ``baseline`` (matching seeds) and the one-sided
    Welch p-value; then each method's AEI."""

    def f(x, spec='.2f'):
        return 'nan' if x is None or x != x else format(x, spec)

    head = (f'{"method":<14}{"vols":>7}{"fraction":>9}{"mean":>8}{"sd":>7}'
            f'{"95% CI":>17}{"n":>3}  {"paired diff [95% CI]":<26}'
            f'{"p(paired)":>10}{"p(Welch>)":>10}')
    lines = [head]
    for method, s in summary.items():
        for i, frac in enumerate(s['fractions']):
            k = s['num_volumes'][i]
            vols = '' if k is None else f'{k}'
            pr = s['paired'].get(frac)
            diff = '' if pr is None else (
                f'{f(pr["mean_diff"], "+.2f")} [{f(pr["ci_low"])}, '
                f'{f(pr["ci_high"])}] n={pr["n"]}')
            p_pair = '' if pr is None else f(pr['p'], '.3g')
            p_w = s['ttest'].get(frac, {}).get('p')
            lines.append(
                f'{method:<14}{vols:>7}{frac:>9.4g}{f(s["mean"][i]):>8}'
                f'{f(s["sd"][i]):>7}'
                f'{"[" + f(s["ci_low"][i]) + ", " + f(s["ci_high"][i]) + "]":>17}'  # noqa: E501
                f'{s["n"][i]:>3}  {diff:<26}{p_pair:>10}'
                f'{"" if p_w is None else f(p_w, ".3g"):>10}')
        lines.append(f'{method:<14} AEI = {s["aei"]:.4f} (reference: '
                     f'{s["reference"]} at r={s["reference_fraction"]:.4g}, '
                     f'score {s["reference_score"]:.4f}; vs {baseline}: '
                     'paired difference = method - baseline)')
    return '\n'.join(lines)


def plot_curves(summary: Dict, path: str, log_x: bool = True,
                ylabel: str = 'mDice') -> None:
    """Score vs true label fraction: mean with the 95 % CI band (sd band
    where the CI is undefined), one line per method."""
    from ..figures import finish_axes, save_figure, subplots
    fig, ax = subplots(figsize=(6, 4))
    for method, s in summary.items():
        x, m = np.asarray(s['fractions']), np.asarray(s['mean'])
        lo = np.asarray(s['ci_low'], dtype=float)
        hi = np.asarray(s['ci_high'], dtype=float)
        ax.plot(x, m, marker='o', label=f"{method} (AEI {s['aei']:.3f})")
        if np.isfinite(lo).any():
            ax.fill_between(x, lo, hi, alpha=0.2)
    if log_x and all(f > 0 for s in summary.values() for f in s['fractions']):
        ax.set_xscale('log')
    finish_axes(ax, 'labelled training volumes used / all training volumes',
                ylabel, legend_size=8)
    save_figure(fig, path)
