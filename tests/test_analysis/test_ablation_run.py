"""The ablation runner's fixed inputs: phantom case ids, the demo preset
and its stages."""
import argparse

import pytest

from medssl.analysis.ablation_run import btcv_phantom_ids, build_parser
from medssl.analysis.ablation_run.demo import demo_argv
from medssl.analysis.ablation_run.runner import stage_titles


def test_btcv_phantom_ids_follow_the_shipped_split():
    # train img0001-2, 4-8, 10, 21-22; val img0003, img0009; test 35-40
    assert btcv_phantom_ids((10, 2, 6)) == [
        1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 21, 22, 35, 36, 37, 38, 39, 40]
    assert btcv_phantom_ids((5, 1, 2)) == [1, 2, 3, 4, 5, 6, 35, 36]
    with pytest.raises(ValueError, match='test has 6 volumes'):
        btcv_phantom_ids((1, 1, 7))


def _demo_args(**kw):
    base = dict(work_dir='w', shape=(64, 64, 16), abdomen_cases=6, seed=3,
                pretrain_iters=30, probe_iters=40, jobs=2)
    return argparse.Namespace(**dict(base, **kw))


def test_demo_preset_parses_as_ablation_options():
    args = build_parser('', '').parse_args(demo_argv(_demo_args()))
    assert args.phantoms and args.variants == ['mocov2', 'full']
    assert args.intensity_ablation == [] and args.finetune_volumes == []
    assert args.seeds == [3] and args.jobs == 2
    assert list(args.btcv_volumes) == [5, 1, 2]
    # phantoms, conversion, pretraining, collapse, probe, reports
    assert len(stage_titles(args)) == 6
    args.finetune_volumes = [1]
    args.skip_probe = True
    assert len(stage_titles(args)) == 5
