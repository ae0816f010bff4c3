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
    assert s['ssl']['std'] == pytest.approx([math.sqrt(0.005)] * 2)
    # own reference: ((.55+.85)/2 * .9) / (.9 * .85)
    assert s['ssl']['aei'] == pytest.approx(0.7 / 0.85)
    assert s['random']['aei'] == pytest.approx(0.5 / 0.75)
    # equal variances .005, n=2: t = .3 / sqrt(.005/2 + .005/2) at r=.1
    assert s['ssl']['ttest'][0.1]['t'] == pytest.approx(0.3 / math.sqrt(.005))
    assert s['random']['ttest'] == {}
    # common reference = random init at full supervision
    s2 = de.summarize(_records(), reference='random')
    assert s2['ssl']['aei'] == pytest.approx(0.7 / 0.75)
    assert s2['ssl']['reference_score'] == pytest.approx(0.75)


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
    }, [0.1, 1.0], [0, 1, 2], str(tmp_path / 'runs'))
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

    from tools_analysis_import import load_tool  # noqa: E402
    tool = load_tool('data_efficiency')
    out = tmp_path / 'out'
    tool.main(['--collect', str(tmp_path / 'runs'), '--out-dir', str(out)])
    with open(out / 'data_efficiency.csv') as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 18
    assert rows[0].keys() == {'method', 'fraction', 'seed', 'dice'}
    summ = json.loads((out / 'data_efficiency_summary.json').read_text())
    assert set(summ) == {'random', 'ssl'}  # nan rows are dropped
    # ssl means: .5 + .03 + .01 = .54 and .5 + .3 + .01 = .81
    assert summ['ssl']['mean'] == pytest.approx([0.54, 0.81])
    assert summ['ssl']['aei'] == pytest.approx((0.54 + 0.81) / 2 / 0.81)
    # identical spread in both groups: t = .2 / sqrt(2 * 1e-4 / 3)
    assert summ['ssl']['ttest']['0.1']['t'] == pytest.approx(
        0.2 / math.sqrt(2e-4 / 3))
    assert summ['ssl']['ttest']['0.1']['p'] < 1e-4
    assert (out / 'data_efficiency.png').stat().st_size > 1000


def test_print_commands(capsys, tmp_path):
    from tools_analysis_import import load_tool
    tool = load_tool('data_efficiency')
    cfg = tmp_path / 'cfg.py'
    cfg.write_text('model = dict(backbone=dict(type="ResNet"))\n')
    tool.main([
        str(cfg), '--checkpoints', 'ssl=/a.pth', '--fractions', '0.1',
        '--seeds', '0', '1', '--print-commands', '--gpus', '4', '--work-dir',
        str(tmp_path)
    ])
    out = capsys.readouterr().out
    lines = [ln for ln in out.splitlines() if ln.startswith('bash')]
    assert len(lines) == 2 * 2 * 2
    assert sum(f'dist_train.sh {cfg} 4' in ln for ln in lines) == 4
    assert not any('_delete_' in ln for ln in lines)  # base has no init_cfg
    assert '$(cat' in lines[1] and 'dist_test.sh' in lines[1]
