"""The fine-tuning arm of the ablation: transfer recipes, paired tables and
Holm's correction.

A *recipe* is how a pretrained backbone is fine-tuned: a patch of the
downstream config (``merge_from_dict`` keys) plus custom hooks, as a
function of the fine-tuning length. Recipes that only concern pretrained
weights (BN re-estimation, a frozen-backbone warm-up, a smaller backbone lr,
which stages to transfer) are not run for scratch; the lr sweep and the
warm-up are run for both, so the comparison is between tuned recipes, not
between a tuned pretrained run and a default scratch run.

Tables: mean ± sd over seeds of the test mDice (and val mDice), the paired
difference to scratch and to MoCo v2 on the same seeds (and the same
labelled volumes), with p-values of paired t-tests corrected for the number
of comparisons in the table (Holm 1979).
"""
import copy
import math
from collections import OrderedDict
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .stats import describe, paired_by_seed

__all__ = [
    'RECIPES', 'PRETRAINED_ONLY', 'recipe_patch', 'apply_recipe', 'holm',
    'finetune_table', 'render_finetune_markdown'
]


def _lr(lr: float) -> Callable[[int], Dict]:
    return lambda iters: {'patch': {'optim_wrapper.optimizer.lr': lr}}


def _warmup(iters: int) -> Dict:
    # index 1: the external checks override param_scheduler.0.end (the poly
    # decay over the whole run); mmengine chains overlapping schedulers.
    warm = dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
                end=max(1, iters // 10))
    return {'append_schedulers': [warm]}


# name -> iters -> {'patch': merge_from_dict keys, 'hooks': custom hooks,
# 'append_schedulers': param schedulers added after the config's}
RECIPES: 'OrderedDict[str, Callable[[int], Dict]]' = OrderedDict([
    ('default', lambda iters: {}),
    ('lr0.003', _lr(0.003)),
    ('lr0.03', _lr(0.03)),
    ('warmup', _warmup),
    ('bb-lr0.1', lambda iters: {'patch': {
        'optim_wrapper.paramwise_cfg': dict(
            custom_keys={'backbone': dict(lr_mult=0.1)})}}),
    ('adabn', lambda iters: {'hooks': [
        dict(type='BNRecalibrationHook', num_batches=20)]}),
    ('lpft', lambda iters: {'hooks': [
        dict(type='FrozenBackboneWarmupHook', fraction=1 / 3)]}),
    ('rescale', lambda iters: {'patch': {
        'model.backbone.init_cfg.rescale': True}}),
    ('stages1-3', lambda iters: {'patch': {
        'model.backbone.init_cfg.exclude': ['layer4.']}}),
    ('stages1-2', lambda iters: {'patch': {
        'model.backbone.init_cfg.exclude': ['layer3.', 'layer4.']}}),
])
# recipes about pretrained weights only (no meaning for a random init)
PRETRAINED_ONLY = ('bb-lr0.1', 'adabn', 'lpft', 'rescale', 'stages1-3',
                   'stages1-2')


def recipe_patch(spec: str, iters: int) -> Dict:
    """The combined patch of ``spec``: recipe names joined by ``+`` (e.g.
    ``'lpft+bb-lr0.1'``)."""
    out = {'patch': {}, 'hooks': [], 'append_schedulers': []}
    for name in spec.split('+'):
        if name not in RECIPES:
            raise KeyError(f'unknown recipe {name!r}; choose from '
                           f'{", ".join(RECIPES)} (joined by +)')
        part = RECIPES[name](iters)
        out['patch'].update(part.get('patch', {}))
        out['hooks'] += part.get('hooks', [])
        out['append_schedulers'] += part.get('append_schedulers', [])
    return out


def is_pretrained_only(spec: str) -> bool:
    return any(n in PRETRAINED_ONLY for n in spec.split('+'))


def apply_recipe(cfg, spec: str, iters: int, pretrained: bool) -> List[str]:
    """Patch an mmengine Config in place with recipe ``spec``; returns the
    ``--cfg-options`` items for the backbone's init_cfg (they must come
    after the ones that set the checkpoint, which replace init_cfg)."""
    if not pretrained and is_pretrained_only(spec):
        raise ValueError(f'recipe {spec!r} needs a pretrained backbone')
    part = recipe_patch(spec, iters)
    init = 'model.backbone.init_cfg'
    patch = {k: v for k, v in part['patch'].items() if not k.startswith(init)}
    if patch:
        cfg.merge_from_dict(patch)
    if part['hooks']:
        cfg.custom_hooks = list(cfg.get('custom_hooks', [])) + \
            copy.deepcopy(part['hooks'])
    if part['append_schedulers']:
        cfg.param_scheduler = list(cfg.param_scheduler) + \
            copy.deepcopy(part['append_schedulers'])
    return [f'{k}={_option_value(v)}' for k, v in part['patch'].items()
            if k.startswith(init)]


def _option_value(v) -> str:
    """A value as mmengine's ``--cfg-options`` parser reads it back."""
    if isinstance(v, (list, tuple)):
        return '[' + ','.join(map(str, v)) + ']'
    return str(v)


def holm(pvalues: Sequence[float]) -> List[float]:
    """Holm's step-down adjusted p-values (NaN stays NaN and does not count
    as a test)."""
    p = np.asarray(pvalues, dtype=np.float64)
    idx = [i for i in np.argsort(p, kind='stable') if math.isfinite(p[i])]
    m = len(idx)
    out = np.full(p.shape, np.nan)
    running = 0.0
    for rank, i in enumerate(idx):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return out.tolist()


Key = Tuple[str, str, int]  # (init, recipe, labelled volumes)


def _by_seed(records, key: Key, field: str) -> Dict[int, float]:
    return {int(r['seed']): float(r[field]) for r in records
            if (r['init'], r['recipe'], int(r['volumes'])) == key and
            isinstance(r.get(field), (int, float)) and
            math.isfinite(float(r[field]))}


def finetune_table(records: Sequence[Dict],
                   baselines: Sequence[Tuple[str, str]] = (
                       ('scratch', 'default'), ('mocov2', 'default')),
                   field: str = 'test_mDice') -> List[Dict]:
    """One row per (init, recipe, volumes): ``describe`` of ``field`` and of
    ``val_mDice`` over seeds, and for each baseline (init, recipe) the
    paired difference on matching seeds at the same volume count, with
    two-sided p-values Holm-corrected over every comparison of the table.

    ``records``: dicts with init, recipe, volumes, seed, val_mDice,
    test_mDice."""
    keys = list(OrderedDict.fromkeys(
        (r['init'], r['recipe'], int(r['volumes'])) for r in records))
    rows, pvals, where = [], [], []
    for key in keys:
        row = dict(init=key[0], recipe=key[1], volumes=key[2],
                   test=describe(list(_by_seed(records, key, field)
                                      .values())),
                   val=describe(list(_by_seed(records, key, 'val_mDice')
                                     .values())),
                   vs={})
        for b_init, b_recipe in baselines:
            bkey = (b_init, b_recipe, key[2])
            if bkey == key or bkey not in keys:
                continue
            diff = paired_by_seed(_by_seed(records, key, field),
                                  _by_seed(records, bkey, field))
            row['vs'][b_init] = diff
            pvals.append(diff.get('p', float('nan')))
            where.append((len(rows), b_init))
        rows.append(row)
    for (i, name), p_adj in zip(where, holm(pvals)):
        rows[i]['vs'][name]['p_holm'] = p_adj
    return rows


def _fmt_diff(d: Optional[Dict]) -> str:
    if not d or not math.isfinite(d.get('mean_diff', float('nan'))):
        return '—'
    return (f"{d['mean_diff']:+.2f} ± {d.get('sd_diff', float('nan')):.2f} "
            f"(p={d.get('p', float('nan')):.3f}, "
            f"Holm {d.get('p_holm', float('nan')):.3f})")


def render_finetune_markdown(rows: Sequence[Dict],
                             baselines: Sequence[str] = ('scratch', 'mocov2')
                             ) -> str:
    """Markdown table of :func:`finetune_table` rows."""
    head = ['init', 'recipe', 'labelled volumes', 'n', 'test mDice %',
            'val mDice %'] + [f'Δ vs {b} (paired)' for b in baselines]
    lines = ['| ' + ' | '.join(head) + ' |', '|---' * len(head) + '|']
    for r in rows:
        t, v = r['test'], r['val']
        cells = [r['init'], r['recipe'], str(r['volumes']), str(t['n']),
                 f"{t['mean']:.2f} ± {t['sd']:.2f}",
                 f"{v['mean']:.2f} ± {v['sd']:.2f}" if v['n'] else '—']
        cells += [_fmt_diff(r['vs'].get(b)) for b in baselines]
        lines.append('| ' + ' | '.join(cells) + ' |')
    return '\n'.join(lines)
