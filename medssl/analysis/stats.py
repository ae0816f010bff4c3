"""Small statistics over seeds: mean ± sd, t confidence intervals, paired
and unpaired comparisons.

Used by the data-efficiency protocol and the method ablation. Plain numpy /
scipy.stats; every function takes plain sequences (or ``{seed: score}``
mappings for the paired ones) and returns floats / dicts of floats, NaN where
a quantity is undefined (e.g. the sd of one seed).

Definitions (n values x_i):

* ``sd`` = sample standard deviation (ddof = 1);
* 95 % CI of the mean = ``mean ± t_{0.975, n-1} · sd / sqrt(n)`` (Student t,
  two-sided);
* paired comparison of a and b over the seeds both have: differences
  ``d_i = a_i - b_i``, their mean, sd, t-CI, and ``scipy.stats.ttest_rel``
  (t = mean(d) / (sd(d) / sqrt(n)), df = n - 1);
* :func:`welch_greater`: one-sided Welch test (unequal variances) when the
  seeds do not match.
"""
import math
from typing import Dict, Mapping, Sequence, Tuple

import numpy as np

__all__ = [
    'describe', 't_interval', 'paired_comparison', 'paired_by_seed',
    'welch_greater', 'format_mean_sd_ci'
]


def _array(values: Sequence[float]) -> np.ndarray:
    a = np.asarray(list(values), dtype=np.float64)
    if a.ndim != 1:
        raise ValueError(f'expected a flat sequence of numbers, got shape '
                         f'{a.shape}')
    return a


def t_interval(values: Sequence[float],
               confidence: float = 0.95) -> Tuple[float, float]:
    """Two-sided Student-t confidence interval of the mean; ``(nan, nan)``
    for fewer than 2 values."""
    a = _array(values)
    if a.size < 2:
        return float('nan'), float('nan')
    from scipy import stats
    half = stats.t.ppf((1 + confidence) / 2, a.size - 1) * a.std(
        ddof=1) / math.sqrt(a.size)
    return float(a.mean() - half), float(a.mean() + half)


def describe(values: Sequence[float], confidence: float = 0.95) -> Dict:
    """``{'n', 'mean', 'sd', 'ci_low', 'ci_high', 'confidence'}`` of the
    values (sd, CI NaN below 2 values; everything NaN for none)."""
    a = _array(values)
    lo, hi = t_interval(a, confidence)
    return dict(
        n=int(a.size),
        mean=float(a.mean()) if a.size else float('nan'),
        sd=float(a.std(ddof=1)) if a.size > 1 else float('nan'),
        ci_low=lo,
        ci_high=hi,
        confidence=confidence)


def paired_comparison(a: Sequence[float],
                      b: Sequence[float],
                      confidence: float = 0.95,
                      alternative: str = 'two-sided') -> Dict:
    """Paired comparison of ``a`` and ``b`` (same seeds, same order).

    Returns ``describe(a - b)`` renamed ``mean_diff``, ``sd_diff``,
    ``ci_low``, ``ci_high``, ``n``, plus ``t`` and ``p`` of
    ``scipy.stats.ttest_rel(a, b, alternative=alternative)`` (NaN below 2
    pairs, or when every difference is equal).
    """
    x, y = _array(a), _array(b)
    if x.shape != y.shape:
        raise ValueError(f'paired comparison needs equally many values, got '
                         f'{x.size} and {y.size}')
    d = describe(x - y, confidence)
    out = dict(n=d['n'], mean_diff=d['mean'], sd_diff=d['sd'],
               ci_low=d['ci_low'], ci_high=d['ci_high'],
               confidence=confidence, t=float('nan'), p=float('nan'))
    if x.size >= 2 and np.ptp(x - y) > 0:
        from scipy import stats
        res = stats.ttest_rel(x, y, alternative=alternative)
        out['t'], out['p'] = float(res.statistic), float(res.pvalue)
    return out


def paired_by_seed(a: Mapping[int, float],
                   b: Mapping[int, float],
                   confidence: float = 0.95,
                   alternative: str = 'two-sided') -> Dict:
    """:func:`paired_comparison` over the seeds present in both mappings
    (``{seed: score}``); adds ``seeds`` (sorted) to the result."""
    seeds = sorted(set(a) & set(b))
    out = paired_comparison([a[s] for s in seeds], [b[s] for s in seeds],
                            confidence, alternative)
    out['seeds'] = seeds
    return out


def welch_greater(scores: Sequence[float],
                  baseline: Sequence[float]) -> Tuple[float, float]:
    """One-sided Welch t-test H1: mean(scores) > mean(baseline).

    Returns ``(t, p)``; ``(nan, nan)`` when either side has < 2 values.
    """
    a, b = _array(scores), _array(baseline)
    if a.size < 2 or b.size < 2:
        return float('nan'), float('nan')
    from scipy import stats
    res = stats.ttest_ind(a, b, equal_var=False, alternative='greater')
    return float(res.statistic), float(res.pvalue)


def format_mean_sd_ci(d: Mapping, digits: int = 2) -> str:
    """``'61.20 ± 1.30 [58.97, 63.43]'`` from :func:`describe`'s dict (the
    sd and interval are left out for a single value)."""
    text = f'{d["mean"]:.{digits}f}'
    if d['n'] > 1:
        text += (f' ± {d["sd"]:.{digits}f} [{d["ci_low"]:.{digits}f}, '
                 f'{d["ci_high"]:.{digits}f}]')
    return text
