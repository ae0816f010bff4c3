"""Fine-tuning arm helpers: recipes as config patches, Holm's correction,
the paired table."""
import math

import pytest
from mmengine.config import Config
from scipy import stats

from medssl.analysis.finetune import (RECIPES, apply_recipe, finetune_table,
                                      holm, render_finetune_markdown)

SSL = 'configs/benchmarks/mmsegmentation/btcv/' \
    'fcn_r18-d8_1xb2-20it_btcv-phantom_ssl.py'


def test_holm_by_hand():
    # sorted: 0.01 x 3, 0.03 x 2 = 0.06, 0.04 x 1 -> max(0.06, 0.04)
    adj = holm([0.01, 0.04, 0.03, float('nan')])
    assert adj[:3] == pytest.approx([0.03, 0.06, 0.06])
    assert math.isnan(adj[3])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1


def test_recipes_patch_the_config():
    cfg = Config.fromfile(SSL)
    n_sched = len(cfg.param_scheduler)
    opts = apply_recipe(cfg, 'warmup+lpft+stages1-3+lr0.003', 300, True)
    # the whole-run decay stays index 0 (external checks override its end)
    assert cfg.param_scheduler[0]['type'] == 'PolyLR'
    assert len(cfg.param_scheduler) == n_sched + 1
    assert cfg.param_scheduler[-1]['end'] == 30
    assert cfg.custom_hooks[-1]['type'] == 'FrozenBackboneWarmupHook'
    assert cfg.optim_wrapper.optimizer.lr == 0.003
    assert opts == ['model.backbone.init_cfg.exclude=[layer4.]']
    with pytest.raises(ValueError, match='pretrained'):
        apply_recipe(Config.fromfile(SSL), 'lpft', 300, False)
    with pytest.raises(KeyError, match='unknown recipe'):
        apply_recipe(Config.fromfile(SSL), 'nope', 300, True)
    assert set(RECIPES) >= {'default', 'adabn', 'bb-lr0.1'}


def _records():
    recs = []
    scores = {'scratch': [10., 12., 14.], 'mocov2': [9., 13., 13.],
              'full': [13., 16., 17.5]}
    for init, vals in scores.items():
        for seed, v in enumerate(vals):
            recs.append(dict(init=init, recipe='default', volumes=1,
                             seed=seed, val_mDice=v - 1, test_mDice=v))
    return recs, scores


def test_table_pairs_by_seed_and_holm_corrects():
    recs, scores = _records()
    rows = {r['init']: r for r in finetune_table(recs)}
    full = rows['full']
    assert full['test']['mean'] == pytest.approx(sum(scores['full']) / 3)
    d = full['vs']['scratch']
    assert d['mean_diff'] == pytest.approx(
        sum(f - s for f, s in zip(scores['full'], scores['scratch'])) / 3)
    p = stats.ttest_rel(scores['full'], scores['scratch']).pvalue
    assert d['p'] == pytest.approx(p)
    # 4 comparisons: full vs scratch, full vs mocov2, mocov2 vs scratch,
    # scratch vs mocov2
    all_p = [c['p'] for r in rows.values() for c in r['vs'].values()]
    assert len(all_p) == 4
    assert d['p_holm'] == pytest.approx(holm(all_p)[
        [c['p'] for r in rows.values() for c in r['vs'].values()].index(
            d['p'])])
    assert d['p_holm'] >= d['p']
    md = render_finetune_markdown(list(rows.values()))
    assert '| full | default | 1 | 3 |' in md
