"""Data-efficiency protocol: math vs hand computations, fake-runner runs."""
import argparse
import csv
import json
import math
import os
import os.path as osp

import pytest
from mmengine.config import Config, DictAction

from medssl.analysis import data_efficiency as de


def test_aei_by_hand():
    # trapezoid: 0.4*(0.4+0.6)/2 + 0.5*(0.6+0.8)/2 = 0.55 over r in [.1, 1]
    fr, sc = [0.1, 0.5, 1.0], [0.4, 0.6, 0.8]
    assert de.annotation_efficiency_integral(fr, sc) == pytest.approx(
        0.55 / (0.9 * 0.8))
    # order does not matter; an explicit reference replaces score(r_max)
    assert de.annotation_efficiency_integral(fr[::-1], sc[::-1], 1.0) == \
        pytest.approx(0.55 / 0.9)
    # a flat curve at the reference score gives exactly 1
    assert de.annotation_efficiency_integral([.01, .25, 1], [.7] * 3) == \
        pytest.approx(1.)
    # single fraction degenerates to score / reference
    assert de.annotation_efficiency_integral([.5], [.3], .6) == \
        pytest.approx(.5)
    with pytest.raises(ValueError):
        de.annotation_efficiency_integral([.1, .1], [.2, .3])


def test_welch_by_hand():
    # means 4 vs 2, variances 1 and 1, n=3: t = 2 / sqrt(2/3), df = 4
    t, p = de.welch_greater([3, 4, 5], [1, 2, 3])
    t_hand = 2 / math.sqrt(2 / 3)
    assert t == pytest.approx(t_hand)
    # closed-form Student-t CDF for 4 degrees of freedom
    u = t_hand**2 / (1 + t_hand**2 / 4)
    cdf = 0.5 + 3 / 8 * (t_hand / math.sqrt(1 + t_hand**2 / 4)) * (1 - u / 12)
    assert p == pytest.approx(1 - cdf, rel=1e-9)
    # the other direction is not significant
    assert de.welch_greater([1, 2, 3], [3, 4, 5])[1] == pytest.approx(cdf)
    assert all(math.isnan(v) for v in de.welch_greater([1.], [2., 3.]))


def _records():
    table = {
        'random': {
            0.1: [0.2, 0.3],
            1.0: [0.7, 0.8]
        },
        'ssl': {
            0.1: [0.5, 0.6],
            1.0: [0.8, 0.9]
        },
    }
    return [
        dict(method=m, fraction=f, seed=s, dice=v) for m, by in table.items()
        for f, vals in by.items() for s, v in enumerate(vals)
    ]


def test_summarize_by_hand():
    s = de.summarize(_records())
    assert s['ssl']['mean'] == pytest.approx([0.55, 0.85])
    assert s['ssl']['sd'] == pytest.approx([math.sqrt(0.005)] * 2)
    # 95 % t interval, n=2: mean +- t_{.975,1} * sd / sqrt(2), t = 12.7062
    half = 12.7062047 * math.sqrt(0.005) / math.sqrt(2)
    assert s['ssl']['ci_low'][0] == pytest.approx(0.55 - half)
    assert s['ssl']['ci_high'][1] == pytest.approx(0.85 + half)
    # paired over seeds 0, 1: differences .3, .3 at r=.1 -> sd 0, no test
    pr = s['ssl']['paired'][0.1]
    assert pr['seeds'] == [0, 1] and pr['mean_diff'] == pytest.approx(.3)
    assert pr['sd_diff'] == pytest.approx(0) and math.isnan(pr['p'])
    # default reference = random init at full supervision (.75):
    # ((.55+.85)/2 * .9) / (.9 * .75)
    assert s['ssl']['aei'] == pytest.approx(0.7 / 0.75)
    assert s['random']['aei'] == pytest.approx(0.5 / 0.75)
    # equal variances .005, n=2: t = .3 / sqrt(.005/2 + .005/2) at r=.1
    assert s['ssl']['ttest'][0.1]['t'] == pytest.approx(0.3 / math.sqrt(.005))
    assert s['random']['ttest'] == {} and s['random']['paired'] == {}
    assert s['ssl']['reference_score'] == pytest.approx(0.75)
    # each method's own reference: ssl / .85
    s2 = de.summarize(_records(), reference=de.OWN_REFERENCE)
    assert s2['ssl']['aei'] == pytest.approx(0.7 / 0.85)
    assert s2['ssl']['reference_score'] == pytest.approx(0.85)


def test_cfg_options_merge_into_configs(tmp_path):
    """The --cfg-options a job produces parse with DictAction and merge
    into configs whose backbone init_cfg is None or a dict."""
    job = de.Job('ssl', '/ckpts/a=b.pth', 0.25, 2, str(tmp_path))
    opts = de.job_cfg_options(job)
    assert 'train_dataloader.dataset.case_fraction=0.25' in opts
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    for init in ('', ', init_cfg=None',
                 ", init_cfg=dict(type='Kaiming', layer='Conv2d')"):
        path = tmp_path / f'c{len(init)}.py'
        path.write_text('model = dict(type="EncoderDecoder", backbone=dict('
                        f'type="mmseg.ResNet"{init}))\n'
                        'train_dataloader = dict(dataset=dict(type="X"))\n'
                        'randomness = dict(seed=0)\n')
        for j, expect in ((job,
                           dict(type='VerifiedPretrained',
                                checkpoint='/ckpts/a=b.pth',
                                prefix='backbone.')),
                          (de.Job('random', None, 1.0, 0, ''), None)):
            cfg = Config.fromfile(str(path))
            replace = de.backbone_has_init_cfg(str(path))
            assert replace == ('init_cfg' in init)
            args = parser.parse_args(
                ['--cfg-options'] +
                de.job_cfg_options(j, replace_init=replace))
            cfg.merge_from_dict(args.cfg_options)
            init_cfg = cfg.model.backbone.init_cfg
            assert (init_cfg.to_dict() if init_cfg else None) == expect
            assert cfg.train_dataloader.dataset.case_fraction == j.fraction
            assert cfg.train_dataloader.dataset.fraction_seed == j.seed
            assert cfg.randomness.seed == j.seed
            assert cfg.model.pretrained is None


def test_transfer_recipe_in_the_config_is_kept(tmp_path):
    """A config whose init_cfg is already VerifiedPretrained (the _ssl
    configs: rescale, exclude) keeps its options; only the checkpoint and
    prefix are set; a random-init job still gets init_cfg=None."""
    path = tmp_path / 'ssl.py'
    path.write_text('model = dict(type="EncoderDecoder", backbone=dict('
                    'type="mmseg.ResNet", init_cfg=dict(type='
                    '"VerifiedPretrained", checkpoint="x.pth", '
                    'prefix="backbone.", rescale=True)))\n'
                    'train_dataloader = dict(dataset=dict(type="X"))\n'
                    'randomness = dict(seed=0)\n')
    replace = de.backbone_has_init_cfg(str(path))
    assert not replace
    parser = argparse.ArgumentParser()
    parser.add_argument('--cfg-options', nargs='+', action=DictAction)
    for job, expect in (
            (de.Job('ssl', '/c/a.pth', 1.0, 0, ''),
             dict(type='VerifiedPretrained', checkpoint='/c/a.pth',
                  prefix='backbone.', rescale=True)),
            (de.Job('random', None, 1.0, 0, ''), None)):
        cfg = Config.fromfile(str(path))
        cfg.merge_from_dict(parser.parse_args(
            ['--cfg-options'] +
            de.job_cfg_options(job, replace_init=replace)).cfg_options)
        init_cfg = cfg.model.backbone.init_cfg
        assert (init_cfg.to_dict() if init_cfg else None) == expect


def test_make_jobs_and_commands(tmp_path):
    ckpts = de.parse_checkpoints(['ssl=/a.pth', '/x/moco_ep1.pth'])
    assert list(ckpts) == ['ssl', 'moco_ep1']
    jobs = de.make_jobs(ckpts, [0.1, 1.0], [0, 1], str(tmp_path))
    assert len(jobs) == 3 * 2 * 2 and jobs[0].method == 'random'
    assert len({j.work_dir for j in jobs}) == len(jobs)
    cmd = de.train_command('cfg.py',
                           jobs[-1],
                           launcher='dist',
                           gpus=8,
                           replace_init=True)
    assert cmd[1].endswith('tools/dist_train.sh') and cmd[2:4] == [
        'cfg.py', '8'
    ]
    assert 'model.backbone.init_cfg.checkpoint=/x/moco_ep1.pth' in cmd
    with pytest.raises(ValueError):
        de.parse_checkpoints(['random=/a.pth'])


def test_read_metric_and_find_checkpoint(tmp_path):
    d = tmp_path / 'run'
    (d / 'test' / '20260101_000000').mkdir(parents=True)
    (d / 'test' / '20260101_000000' / 'scalars.json').write_text(
        json.dumps({
            'step': 1,
            'VolumeDice/mDice': 0.5
        }) + '\n' + json.dumps({
            'step': 2,
            'VolumeDice/mDice': 0.625
        }) + '\n')
    assert de.read_metric(str(d)) == pytest.approx(0.625)
    (d / 'test' / 'volume_dice.json').write_text(
        json.dumps({
            'mDice': 0.75,
            'per_class': {
                'liver': 0.9
            }
        }))
    os.utime(d / 'test' / 'volume_dice.json', (2e9, 2e9))
    assert de.read_metric(str(d)) == pytest.approx(0.75)
    assert de.read_metric(str(tmp_path / 'missing')) is None
    (d / 'iter_4.pth').write_bytes(b'x')
    (d / 'last_checkpoint').write_text(str(d / 'iter_4.pth'))
    assert de.find_checkpoint(str(d)) == str(d / 'iter_4.pth')


class FakeRunner:
    """train_fn/test_fn stand-ins: Dice = base[method] + 0.3 * fraction +
    0.01 * seed; 'broken' fails in training."""
    base = {'random': 0.3, 'ssl': 0.5}

    def __init__(self):
        self.calls = []

    def train(self, job):
        self.calls.append(('train', job.name))
        if job.method == 'broken':
            raise RuntimeError('boom')
        os.makedirs(job.work_dir, exist_ok=True)
        return osp.join(job.work_dir, 'iter_1.pth')

    def test(self, job, ckpt):
        self.calls.append(('test', job.name))
        return self.base[job.method] + 0.3 * job.fraction + 0.01 * job.seed


def test_run_jobs_with_fake_runner_and_outputs(tmp_path):
    fake = FakeRunner()
    jobs = de.make_jobs({
        'ssl': '/a.pth',
        'broken': '/b.pth'
    }, [0.1, 1.0], [0, 1, 2], str(tmp_path / 'runs'), total_volumes=20)
    records = de.run_jobs(jobs, fake.train, fake.test, progress=False)
    assert len(records) == 18
    assert sum(1 for r in records if 'error' in r) == 6
    ok = [r for r in records if 'error' not in r]
    assert len(ok) == 12 and len(fake.calls) == 12 * 2 + 6
    # resumable: finished runs are not repeated, failed ones are retried
    fake2 = FakeRunner()
    again = de.run_jobs(jobs, fake2.train, fake2.test, progress=False)
    assert [c for c in fake2.calls if c[0] == 'test'] == []
    assert len(again) == 18

    from tool_scripts import load_tool  # noqa: E402
    tool = load_tool('data_efficiency')
    out = tmp_path / 'out'
    tool.main(['--collect', str(tmp_path / 'runs'), '--out-dir', str(out)])
    with open(out / 'data_efficiency.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18  # failed runs too (dice nan)
    assert rows[0].keys() == {'method', 'fraction', 'num_volumes',
                              'total_volumes', 'seed', 'dice', 'tested'}
    # the fraction recorded = volumes trained on / training volumes
    assert {(r['num_volumes'], r['total_volumes'], float(r['fraction']))
            for r in rows} == {('2', '20', 0.1), ('20', '20', 1.0)}
    summ = json.loads((out / 'data_efficiency_summary.json').read_text())
    assert set(summ) == {'random', 'ssl'}  # nan rows are dropped
    # ssl means: .5 + .03 + .01 = .54 and .5 + .3 + .01 = .81
    assert summ['ssl']['mean'] == pytest.approx([0.54, 0.81])
    # AEI reference: random init at r = 1, .3 + .3 + .01 = .61
    assert summ['ssl']['reference'] == 'random'
    assert summ['ssl']['aei'] == pytest.approx((0.54 + 0.81) / 2 / 0.61)
    # identical spread in both groups: t = .2 / sqrt(2 * 1e-4 / 3)
    assert summ['ssl']['ttest']['0.1']['t'] == pytest.approx(
        0.2 / math.sqrt(2e-4 / 3))
    assert summ['ssl']['ttest']['0.1']['p'] < 1e-4
    # paired by seed: every difference is .2 (sd 0 -> no p-value)
    assert summ['ssl']['paired']['0.1']['mean_diff'] == pytest.approx(.2)
    assert summ['ssl']['paired']['0.1']['p'] is None
    assert summ['ssl']['num_volumes'] == [2, 20]
    assert (out / 'data_efficiency.png').stat().st_size > 1000


def test_print_commands(capsys, tmp_path):
    from tool_scripts import load_tool
    tool = load_tool('data_efficiency')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('model = dict(backbone=dict(type="ResNet"))\n')
    tool.main([
        str(cfg), '--checkpoints', 'ssl=/a.pth', '--fractions', '0.1',
        '--seeds', '0', '1', '--print-commands', '--gpus', '4', '--work-dir',
        str(tmp_path), '--train-volumes', '20'
    ])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith('bash')]
    assert len(lines) == 2 * 2 * 2
    assert sum(f'dist_train.sh {cfg} 4' in ln for ln in lines) == 4
    assert not any('_delete_' in ln for ln in lines)  # base has no init_cfg
    assert '$(cat' in lines[1] and 'dist_test.sh' in lines[1]


def test_true_fractions_are_recorded(tmp_path):
    """Nominal 1 % / 10 % / 25 % of 24 volumes train on 1, 2 and 6 volumes:
    the records, the CSV and the x-axis say 1/24, 2/24, 6/24; a fraction
    selecting the same count as another runs once."""
    with pytest.warns(UserWarning, match='selects 1/24'):
        jobs = de.make_jobs({}, [0.01, 0.02, 0.1, 0.25, 1.0], [0],
                            str(tmp_path), total_volumes=24)
    assert [(j.fraction, j.num_volumes) for j in jobs] == [
        (0.01, 1), (0.1, 2), (0.25, 6), (1.0, 24)]
    assert osp.basename(jobs[0].work_dir) == 'random_1of24vol_seed0'
    records = de.run_jobs(jobs, lambda j: 'ckpt', lambda j, c: 50.,
                          progress=False)
    assert [r['fraction'] for r in records] == [1 / 24, 2 / 24, 6 / 24, 1.]
    assert [r['nominal_fraction'] for r in records] == [.01, .1, .25, 1.]
    de.write_csv(records, str(tmp_path / 'de.csv'))
    rows = de.read_csv(str(tmp_path / 'de.csv'))
    assert [(r['fraction'], r['num_volumes'], r['total_volumes'])
            for r in rows] == [(k / 24, k, 24) for k in (1, 2, 6, 24)]
    # the dataset's own rule gives the same counts
    from medssl.datasets.btcv import select_case_fraction
    cases = [f'img{i:04d}' for i in range(24)]
    assert [len(select_case_fraction(cases, f)) for f in
            (.01, .1, .25, 1.)] == [1, 2, 6, 24]
    # collect() reads the counts back from the run names
    for j in jobs:
        (tmp_path / 'c' / osp.basename(j.work_dir) / 'test').mkdir(
            parents=True)
        (tmp_path / 'c' / osp.basename(j.work_dir) / 'test' /
         'volume_dice.json').write_text(json.dumps({'mDice': 60.}))
    got = de.collect_results(str(tmp_path / 'c'))
    assert sorted((r['fraction'], r['num_volumes']) for r in got) == [
        (k / 24, k) for k in (1, 2, 6, 24)]


def test_aei_on_true_fractions_by_hand():
    """1, 2, 5, 20 of 20 volumes -> r = .05, .1, .25, 1 with mean scores
    .4, .5, .6, .8: area = .05 * .45 + .15 * .55 + .75 * .7 = .63, AEI =
    .63 / ((1 - .05) * .8)."""
    records = [
        dict(method='ssl', fraction=k / 20, num_volumes=k, total_volumes=20,
             seed=s, dice=v + d)
        for k, v in ((1, .4), (2, .5), (5, .6), (20, .8))
        for s, d in ((0, -.01), (1, .01))
    ]
    s = de.summarize(records)
    assert s['ssl']['fractions'] == pytest.approx([.05, .1, .25, 1.])
    assert s['ssl']['num_volumes'] == [1, 2, 5, 20]
    assert s['ssl']['aei'] == pytest.approx(.63 / (.95 * .8))


def test_auto_run_honours_gpus(tmp_path, monkeypatch):
    calls = []
    runner = de.SubprocessRunner('cfg.py', gpus=4)
    runner._replace_init = False
    runner._save_best[()] = None  # 'cfg.py' is not read
    monkeypatch.setattr(runner, '_run', lambda cmd, log: calls.append(cmd))
    job = de.Job('random', None, 1.0, 0, str(tmp_path / 'j'))
    (tmp_path / 'j').mkdir()
    (tmp_path / 'j' / 'iter_1.pth').write_bytes(b'x')
    ckpt = runner.train(job)
    (tmp_path / 'j' / 'test').mkdir()
    (tmp_path / 'j' / 'test' / 'volume_dice.json').write_text('{"mDice": 1}')
    runner.test(job, ckpt)
    assert calls[0][1].endswith('tools/dist_train.sh')
    assert calls[0][2:4] == ['cfg.py', '4']
    assert calls[1][1].endswith('tools/dist_test.sh')
    assert calls[1][2:5] == ['cfg.py', ckpt, '4']
    one = de.SubprocessRunner('cfg.py')
    assert one.launcher == 'python'
