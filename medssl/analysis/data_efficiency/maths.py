"""Data-efficiency maths: the annotation-efficiency integral and the
per-method summary over seeds (pure functions, tested by hand).

* :func:`annotation_efficiency_integral`:
  ``AEI = int_{r_min}^{r_max} score(r) dr / ((r_max - r_min) * score_ref)``
  where ``r`` is the **true** label fraction (volumes trained on / training
  volumes), ``score(r)`` the per-fraction mean score, linearly interpolated
  between measured fractions (``scipy.integrate.trapezoid``, exact for a
  piecewise-linear curve), ``[r_min, r_max]`` the measured range and
  ``score_ref`` ("score_full_supervised", Rettenberger et al.) the mean
  score of one reference method at its largest fraction (not its best
  score), by default the baseline (random init, i.e. scratch) for every
  method, so AEIs of different methods are comparable: divided by its own
  full-data score a method that is never worse than another can get the
  lower AEI. ``reference='own'`` normalises each method by itself (also the
  fallback without baseline runs); the summary names the reference used.
  AEI = 1: a flat curve at the reference's full-supervision score.
* :func:`summarize`: per method and fraction mean ± sd and the 95 % t
  interval over seeds (:mod:`medssl.analysis.stats`), a paired comparison
  with the baseline over the seeds both have, and a one-sided Welch test.
"""
import math
from collections import OrderedDict, defaultdict
from typing import Dict, Optional, Sequence

import numpy as np

from medssl.analysis.stats import describe, paired_by_seed, welch_greater

__all__ = [
    'RANDOM_INIT', 'OWN_REFERENCE', 'annotation_efficiency_integral',
    'group_scores', 'summarize', 'welch_greater'
]

RANDOM_INIT = 'random'
# ``summarize(reference=OWN_REFERENCE)``: each method is its own AEI reference
OWN_REFERENCE = 'own'


def annotation_efficiency_integral(
        fractions: Sequence[float],
        scores: Sequence[float],
        reference_score: Optional[float] = None) -> float:
    """Normalised area under the piecewise-linear score(r) curve.

    Args:
        fractions: true label fractions (any order, no duplicates).
        scores: score at each fraction (e.g. the mean Dice over seeds).
        reference_score: ``score_full_supervised``; defaults to the score at
            the largest fraction.

    Returns:
        ``trapezoid(scores, fractions) / ((r_max - r_min) * reference)``;
        with a single fraction ``score / reference``; NaN if the reference
        is 0.
    """
    from scipy.integrate import trapezoid
    r = np.asarray(fractions, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if r.shape != s.shape or r.size == 0:
        raise ValueError('fractions and scores must be non-empty and of the '
                         f'same length, got {r.shape} and {s.shape}')
    order = np.argsort(r)
    r, s = r[order], s[order]
    if np.any(np.diff(r) == 0):
        raise ValueError(f'duplicate fractions: {r.tolist()}')
    if reference_score is None:
        reference_score = float(s[-1])
    if reference_score == 0:
        return float('nan')
    if r.size == 1:
        return float(s[0] / reference_score)
    return float(trapezoid(s, r)) / (float(r[-1] - r[0]) *
                                     float(reference_score))


def group_scores(
        records: Sequence[Dict]) -> Dict[str, Dict[float, Dict[int, float]]]:
    """``{method: {fraction: {seed: score}}}`` (fractions and seeds sorted;
    ``fraction`` = the record's true fraction). Records with a non-finite
    score are dropped."""
    tmp = defaultdict(lambda: defaultdict(dict))
    for rec in records:
        score = float(rec['dice'])
        if not math.isfinite(score):
            continue
        tmp[rec['method']][float(rec['fraction'])][int(rec['seed'])] = score
    return OrderedDict(
        (m, OrderedDict((f, dict(sorted(by_seed.items())))
                        for f, by_seed in sorted(by_frac.items())))
        for m, by_frac in tmp.items())


def summarize(records: Sequence[Dict],
              baseline: str = RANDOM_INIT,
              reference: Optional[str] = None,
              confidence: float = 0.95) -> Dict:
    """Per-method curves over seeds, AEI, and comparisons with ``baseline``.

    Args:
        records: dicts with ``method``, ``fraction`` (true), ``seed``,
            ``dice`` (and optionally ``num_volumes``, ``total_volumes``).
        baseline: method compared against (random init).
        reference: method whose mean at its largest fraction is the AEI's
            ``score_full_supervised`` for every method; None = ``baseline``
            when it has results, else each method's own;
            :data:`OWN_REFERENCE` = each method's own.
        confidence: level of the t intervals.

    Returns:
        ``{method: {'fractions', 'num_volumes', 'mean', 'sd', 'ci_low',
        'ci_high', 'n', 'aei', 'reference', 'reference_fraction',
        'reference_score', 'paired': {fraction: paired_by_seed(...)},
        'ttest': {fraction: {'t', 'p'}}}}``; ``reference`` names the method
        whose score at ``reference_fraction`` is ``reference_score``. ``sd``
        and the interval are NaN for a single seed. ``paired`` holds the
        seeds both methods have (difference method - baseline, two-sided);
        ``ttest`` the one-sided Welch test (unmatched seeds).
    """
    grouped = group_scores(records)
    volumes = {(r['method'], float(r['fraction'])): r.get('num_volumes')
               for r in records}
    if reference is None:
        reference = baseline if baseline in grouped else OWN_REFERENCE
    if reference != OWN_REFERENCE and reference not in grouped:
        raise KeyError(f'reference method {reference!r} has no results')
    base = grouped.get(baseline, {})
    out = OrderedDict()
    for method, by_frac in grouped.items():
        stats = [describe(list(v.values()), confidence)
                 for v in by_frac.values()]
        fracs = list(by_frac)
        means = [d['mean'] for d in stats]
        ref = method if reference == OWN_REFERENCE else reference
        # the score at the reference's largest fraction (full data), not its
        # best one: a curve may peak below full data
        ref_frac = max(grouped[ref])
        ref_score = float(np.mean(list(grouped[ref][ref_frac].values())))
        paired, tests = OrderedDict(), OrderedDict()
        if method != baseline:
            for f, v in by_frac.items():
                if f not in base:
                    continue
                if set(v) & set(base[f]):
                    paired[f] = paired_by_seed(v, base[f], confidence)
                t, p = welch_greater(list(v.values()),
                                     list(base[f].values()))
                tests[f] = dict(t=t, p=p)
        out[method] = dict(
            fractions=fracs,
            num_volumes=[volumes.get((method, f)) for f in fracs],
            mean=means,
            sd=[d['sd'] for d in stats],
            ci_low=[d['ci_low'] for d in stats],
            ci_high=[d['ci_high'] for d in stats],
            n=[d['n'] for d in stats],
            aei=annotation_efficiency_integral(fracs, means, ref_score),
            reference=ref,
            reference_fraction=ref_frac,
            reference_score=ref_score,
            paired=paired,
            ttest=tests)
    return out
