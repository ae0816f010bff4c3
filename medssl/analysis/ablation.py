"""The method ablation: variants x seeds at one budget, through the same
tools a user runs (``tools/train.py`` -> ``tools/analysis_tools/collapse.py``
-> linear probe ``tools/train.py`` + ``tools/test.py``).

A variant is a pretraining config plus a patch (``merge_from_dict`` keys)
and an intensity-augmentation level; the tool writes each patched config to
``<work_dir>/configs/<variant>.py`` (so every run can be repeated by hand)
and trains it. Runs whose outputs exist are skipped, so an interrupted
ablation continues where it stopped.

Reported per variant (mean ± sd over seeds, 95 % t-interval, paired
difference to ``mocov2`` on matching seeds): effective rank and RankMe of
the representation handed to segmentation (the backbone's pooled last
stage: the linear probe reads it) and of the projector output, linear-probe
mean 3D Dice on the held-out volumes.
"""
import copy
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np

from .stats import describe, format_mean_sd_ci, paired_by_seed
from .variants import VARIANTS, VIEWS

__all__ = [
    'VARIANTS', 'INTENSITY_LEVELS', 'patch_intensity', 'variant_config',
    'summarize', 'render_markdown', 'plot_mean_spectra'
]

# Intensity augmentation levels: a factor on every magnitude (ranges shrink
# towards the identity); 'none' drops the intensity transforms. On CT the
# intensity is the tissue (HU), so strong changes may teach invariance to
# exactly what segmentation needs.
INTENSITY_LEVELS = OrderedDict(strong=1.0, mild=0.5, none=0.0)
_INTENSITY_TYPES = ('RandomIntensityScale', 'RandomIntensityShift',
                    'RandomGamma', 'RandomGaussianNoise',
                    'RandomFloatGaussianBlur', 'RandomHUContrast',
                    'RandomHUBrightness', 'RandomGaussianBlur')


def _scale_about(rng, centre: float, factor: float):
    return tuple(centre + factor * (v - centre) for v in rng)


def _scale_transform(t: dict, factor: float) -> dict:
    """Shrink a transform's magnitudes by ``factor`` (1 = unchanged)."""
    t = dict(t)
    for key in ('contrast_range', 'gamma_range'):
        if key in t:
            t[key] = _scale_about(t[key], 1.0, factor)
    for key in ('std_range', 'sigma_range'):
        if key in t:
            t[key] = _scale_about(t[key], 0.0, factor)
    if 'delta' in t:
        t['delta'] = t['delta'] * factor
    return t


def patch_intensity(pipeline: Sequence[dict], level: str) -> List[dict]:
    """The training pipeline with every view's intensity augmentations set to
    ``level`` (a key of :data:`INTENSITY_LEVELS`)."""
    factor = INTENSITY_LEVELS[level]
    out = []
    for t in pipeline:
        t = copy.deepcopy(dict(t))
        if t.get('type') == 'MultiViewWithParams':
            t['transforms'] = [[
                _scale_transform(v, factor) for v in view
                if not (factor == 0 and v.get('type') in _INTENSITY_TYPES)
            ] if factor != 1 else list(view) for view in t['transforms']]
        out.append(t)
    return out


def patch_views(pipeline: Sequence[dict], views: Dict[str, dict]
                ) -> List[dict]:
    """``pipeline`` with the arguments of the view transforms named in
    ``views`` (``{type: {arg: value}}``) replaced."""
    out = []
    for t in pipeline:
        t = copy.deepcopy(dict(t))
        if views and t.get('type') == 'MultiViewWithParams':
            t['transforms'] = [[dict(v, **views.get(v.get('type'), {}))
                                for v in view] for view in t['transforms']]
        out.append(t)
    return out


def variant_config(repo: str, name: str, intensity: str = 'strong',
                   options: Optional[Dict] = None):
    """The mmengine Config of a variant (patched, intensity level applied,
    then ``options``)."""
    from mmengine.config import Config
    path, patch = VARIANTS[name]
    cfg = Config.fromfile(osp.join(repo, path))
    patch = dict(patch)
    views = patch.pop(VIEWS, {})
    cfg.merge_from_dict(patch)  # dicts merge into the config's; None replaces
    ds = cfg.train_dataloader.dataset
    ds.pipeline = patch_views(patch_intensity(ds.pipeline, intensity), views)
    if options:
        cfg.merge_from_dict(options)
    return cfg


def summarize(records: Sequence[Dict], baseline: str = 'mocov2') -> Dict:
    """Per variant: ``describe`` of every numeric field over seeds, and the
    paired difference to ``baseline`` for each field on matching seeds.

    ``records``: dicts with ``variant``, ``seed`` and numeric fields."""
    fields = sorted({k for r in records for k, v in r.items()
                     if k not in ('variant', 'seed') and
                     isinstance(v, (int, float))})
    by_variant: Dict[str, Dict[str, Dict[int, float]]] = OrderedDict()
    for r in records:
        per = by_variant.setdefault(r['variant'], {f: {} for f in fields})
        for f in fields:
            if isinstance(r.get(f), (int, float)) and np.isfinite(r[f]):
                per[f][int(r['seed'])] = float(r[f])
    out = OrderedDict()
    for name, per in by_variant.items():
        out[name] = OrderedDict()
        for f in fields:
            entry = describe(list(per[f].values()))
            if name != baseline and baseline in by_variant:
                entry['vs_' + baseline] = paired_by_seed(
                    per[f], by_variant[baseline][f])
            out[name][f] = entry
    return out


def render_markdown(summary: Dict, columns: Sequence[str],
                    baseline: str = 'mocov2', diff_field: str = 'mDice'
                    ) -> str:
    """Table: variant x columns (mean ± sd [95 % CI]) plus the paired
    ``diff_field`` difference to the baseline."""
    head = ['variant'] + list(columns) + [f'Δ{diff_field} vs {baseline}']
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for name, fields in summary.items():
        cells = [name]
        for c in columns:
            cells.append(format_mean_sd_ci(fields[c]) if c in fields else '—')
        diff = fields.get(diff_field, {}).get('vs_' + baseline)
        if diff:
            p = diff.get('p', float('nan'))
            cells.append(f"{diff['mean_diff']:+.2f} "
                         f"[{diff['ci_low']:+.2f}, {diff['ci_high']:+.2f}]"
                         f" p={p:.3f}")
        else:
            cells.append('—')
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)


def plot_mean_spectra(spectra: Dict[str, List[Sequence[float]]], path: str,
                      title: str = 'backbone') -> None:
    """Mean over seeds of each variant's log10 covariance spectrum,
    normalised to sum 1 (the distribution whose entropy is log effective
    rank), up to the last non-zero value."""
    from .figures import finish_axes, save_figure, subplots
    fig, ax = subplots(figsize=(6, 4))
    for name, specs in spectra.items():
        n = min(len(s) for s in specs)
        arr = np.array([s[:n] for s in specs], dtype=np.float64)
        arr = arr / arr.sum(1, keepdims=True)
        n = int(max(1, (arr.max(0) > 1e-9 * arr.max()).sum()))
        logs = np.log10(np.maximum(arr[:, :n], 1e-12))
        mean, sd = logs.mean(0), logs.std(0)
        x = np.arange(1, n + 1)
        ax.plot(x, mean, label=f'{name} (n={len(specs)})')
        ax.fill_between(x, mean - sd, mean + sd, alpha=0.2)
    ax.set_title(f'{title}: normalised covariance spectrum')
    ax.set_xscale('log')  # the head decides the effective rank
    finish_axes(ax, 'singular value rank index',
                'log10 (singular value / sum), mean ± sd')
    save_figure(fig, path)
