"""Data-efficiency protocol: what a run really trains on, which checkpoint
it tests, and what the AEI is normalised by (issue 15)."""
import argparse
import csv
import os.path as osp

import pytest
from mmengine.config import Config, DictAction
from tool_scripts import ROOT

from medssl.analysis import data_efficiency as de
from medssl.registry import DATASETS

ONE_VOL = osp.join(ROOT, 'configs', 'benchmarks', 'mmsegmentation', 'btcv',
                   'deeplabv3plus_r50-d8_4xb4-40k_btcv-512x512_1vol.py')


def _merge(cfg, options):
    parser = argparse.ArgumentParser()
    parser.add_argument('--o', nargs='+', action=DictAction)
    cfg.merge_from_dict(parser.parse_args(['--o', *options]).o)
    return cfg


def test_planned_volume_count_reaches_the_dataset(tmp_path):
    """A ``*_1vol`` config fixes ``num_cases=1``; every planned run must
    still train on the volume count it records (3 and 6 of 6 here, and all
    6 for an unplanned full-fraction job)."""
    cases = [f'img{i:04d}' for i in range(6)]
    (tmp_path / 'splits').mkdir()
    (tmp_path / 'splits' / 'train.txt').write_text(''.join(
        f'{c}_{z:04d}\n' for c in cases for z in range(2)))
    jobs = de.make_jobs({}, [0.5, 1.0], [0, 1], str(tmp_path / 'runs'),
                        total_volumes=len(cases))
    jobs.append(de.Job('random', None, 1.0, 0, ''))  # no count planned
    seen = {}
    for job in jobs:
        cfg = _merge(Config.fromfile(ONE_VOL), de.job_cfg_options(job) + [
            f'train_dataloader.dataset.data_root={tmp_path}',
            'train_dataloader.dataset.pipeline=[]'])
        assert cfg.train_dataloader.dataset.ann_file == 'splits/train.txt'
        ds = DATASETS.build(cfg.train_dataloader.dataset)
        expected = job.num_volumes or len(cases)
        assert len(ds.selected_cases) == expected, job.name
        assert len(ds) == 2 * expected
        assert job.true_fraction == expected / len(cases)
        seen.setdefault(expected, set()).add(tuple(ds.selected_cases))
    assert sorted(seen) == [3, 6]
    assert len(seen[3]) == 2  # the seed picks the volumes


def _runner_config(tmp_path, save_best):
    path = tmp_path / f'cfg_{save_best}.py'
    path.write_text(
        'model = dict(backbone=dict(type="ResNet"))\n'
        'default_hooks = dict(checkpoint=dict(type="CheckpointHook", '
        f'interval=2, save_best={save_best!r}))\n')
    return str(path)


def _fake_training(cmd, log):
    """What mmengine leaves behind: the best-on-val checkpoint of iteration
    2 and the last one of iteration 4, named in ``last_checkpoint``."""
    work = cmd[cmd.index('--work-dir') + 1]
    import os
    os.makedirs(work, exist_ok=True)
    for name in ('iter_2.pth', 'iter_4.pth', 'best_mDice_iter_2.pth'):
        with open(osp.join(work, name), 'wb') as f:
            f.write(b'x')
    with open(osp.join(work, 'last_checkpoint'), 'w') as f:
        f.write(osp.join(work, 'iter_4.pth'))


@pytest.mark.parametrize('save_best,extra,kind', [
    ('mDice', [], 'best'),
    (None, [], 'last'),
    ('mDice', ['default_hooks.checkpoint.save_best=None'], 'last'),
])
def test_tests_the_checkpoint_chosen_on_val(tmp_path, monkeypatch, save_best,
                                            extra, kind):
    runner = de.SubprocessRunner(_runner_config(tmp_path, save_best))
    runner._replace_init = False
    tested = []
    monkeypatch.setattr(runner, '_run', _fake_training)
    monkeypatch.setattr(runner, 'test',
                        lambda job, ckpt: tested.append(ckpt) or 50.)
    job = de.Job('random', None, 1.0, 0, str(tmp_path / 'run'), extra, 4, 4)
    records = de.run_jobs([job], runner.train, runner.test, progress=False)
    expect = 'best_mDice_iter_2.pth' if kind == 'best' else 'iter_4.pth'
    assert [osp.basename(p) for p in tested] == [expect]
    assert records[0]['tested'] == kind
    de.write_csv(records, str(tmp_path / 'de.csv'))
    with open(tmp_path / 'de.csv') as f:
        assert [r['tested'] for r in csv.DictReader(f)] == [kind]
    assert [r['tested'] for r in de.read_csv(str(tmp_path / 'de.csv'))] == \
        [kind]


def test_best_checkpoint_missing_falls_back_to_last_and_says_so(tmp_path):
    (tmp_path / 'iter_4.pth').write_bytes(b'x')
    (tmp_path / 'last_checkpoint').write_text(str(tmp_path / 'iter_4.pth'))
    with pytest.warns(UserWarning, match='no best_mDice_'):
        got = de.find_checkpoint(str(tmp_path), save_best='mDice')
    assert got == str(tmp_path / 'iter_4.pth')
    assert de.checkpoint_kind(got) == 'last'
    # 'auto' takes whichever indicator mmengine chose
    (tmp_path / 'best_aAcc_iter_3.pth').write_bytes(b'x')
    assert osp.basename(de.find_checkpoint(str(tmp_path), 'auto')) == \
        'best_aAcc_iter_3.pth'


def _curve_records(curves):
    return [dict(method=m, fraction=f, seed=s, dice=v + d)
            for m, by in curves.items() for f, v in by.items()
            for s, d in ((0, -.01), (1, .01))]


def test_aei_reference_defaults_to_scratch():
    """SSL is never worse than scratch (.3 vs .2 at r = .1, .6 vs .3 at
    r = 1), yet divided by its own full-data score its AEI would be lower
    (.45/.6 = .75 < .25/.3): the default reference is scratch's full-data
    score, and the summary says so."""
    curves = {'random': {.1: .2, 1.: .3}, 'ssl': {.1: .3, 1.: .6}}
    s = de.summarize(_curve_records(curves))
    assert s['ssl']['reference'] == s['random']['reference'] == 'random'
    assert s['ssl']['reference_score'] == pytest.approx(.3)
    assert s['ssl']['aei'] == pytest.approx(.45 / .3)
    assert s['random']['aei'] == pytest.approx(.25 / .3)
    assert s['ssl']['aei'] > s['random']['aei']
    assert 'reference: random' in de.format_summary(s)
    # each method's own full-data score only when asked for
    own = de.summarize(_curve_records(curves), reference='own')
    assert own['ssl']['reference'] == 'ssl'
    assert own['ssl']['aei'] == pytest.approx(.75)
    assert own['random']['aei'] == pytest.approx(.25 / .3)
    # no scratch runs (--no-random): own, and said
    only = de.summarize(_curve_records({'ssl': curves['ssl']}))
    assert only['ssl']['reference'] == 'ssl'
    assert 'reference: ssl' in de.format_summary(only)


def test_aei_reference_is_the_largest_fraction_not_the_best_score():
    """A non-monotone curve (the middle fraction scores best): the
    reference is the score at the largest fraction (.8), not the maximum
    (.9). Area = .4 * .65 + .5 * .85 = .685."""
    fr, sc = [.1, .5, 1.], [.4, .9, .8]
    assert de.annotation_efficiency_integral(fr, sc) == pytest.approx(
        .685 / (.9 * .8))
    curves = {'random': dict(zip(fr, sc)), 'ssl': {.1: .5, .5: .9, 1.: .85}}
    s = de.summarize(_curve_records(curves))
    assert s['random']['reference_score'] == pytest.approx(.8)
    assert s['random']['aei'] == pytest.approx(.685 / (.9 * .8))
    own = de.summarize(_curve_records(curves), reference='own')
    assert own['ssl']['reference_score'] == pytest.approx(.85)


@pytest.mark.parametrize('save_best,expect', [
    ('mDice', '"$(ls -t {w}/best_mDice_*.pth | head -n 1)"'),
    (None, '"$(cat {w}/last_checkpoint)"'),
])
def test_printed_test_command_tests_the_same_checkpoint(capsys, tmp_path,
                                                        save_best, expect):
    from tool_scripts import load_tool
    tool = load_tool('data_efficiency')
    tool.main([_runner_config(tmp_path, save_best), '--no-random',
               '--checkpoints', 'ssl=/a.pth', '--fractions', '1.0', '--seeds',
               '0', '--print-commands', '--work-dir', str(tmp_path),
               '--train-volumes', '4'])
    tests = [ln for ln in capsys.readouterr().out.splitlines()
             if 'dist_test.sh' in ln]
    work = osp.join(str(tmp_path), 'ssl_4of4vol_seed0')
    assert len(tests) == 1 and expect.format(w=work) in tests[0]


def test_collected_runs_say_which_checkpoint_was_tested(tmp_path):
    """Runs launched from printed commands have no result.json: the kind
    of the tested checkpoint comes from the log of tools/test.py."""
    for name, line in (('ssl_1of4vol_seed0', 'best_mDice_iter_2.pth'),
                       ('ssl_4of4vol_seed0', 'iter_4.pth'),
                       ('random_4of4vol_seed0', None)):
        test = tmp_path / name / 'test'
        (test / '20260101_000000').mkdir(parents=True)
        (test / 'volume_dice.json').write_text('{"mDice": 60.0}')
        if line:
            (test / '20260101_000000' / '20260101_000000.log').write_text(
                '12/04 14:00:00 - mmengine - INFO - Load checkpoint from '
                f'{tmp_path / name / line} (strict)\n')
    got = {(r['method'], r['num_volumes']): r['tested']
           for r in de.collect_results(str(tmp_path))}
    assert got == {('ssl', 1): 'best', ('ssl', 4): 'last',
                   ('random', 4): None}
