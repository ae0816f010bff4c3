"""The ablation tool end to end on tiny phantoms (a few iterations)."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_ablation_tool_end_to_end(tmp_path):
    work = tmp_path / 'abl'
    cmd = [sys.executable, osp.join(REPO, 'tools/analysis_tools/ablation.py'),
           '--phantoms', '--phantom-shape', '40', '40', '8', '--seeds', '0',
           '--variants', 'mocov2', 'full', '--intensity-ablation',
           'full:none', '--pretrain-iters', '2', '--batch-size', '4',
           '--probe-iters', '2', '--pool-volumes', '6',
           '--finetune-volumes', '1', '--finetune-iters', '2',
           '--finetune-inits', 'full', 'mocov2', '--diagnose', 'lpft',
           '--work-dir', str(work)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((work / 'ablation.json').read_text())
    names = {r['variant'] for r in report['records']}
    assert names == {'random', 'mocov2', 'full', 'full@none'}
    for rec in report['records']:
        assert rec['backbone_erank'] >= 1.0 and rec['mDice'] is not None
    # the patched configs are written for re-running by hand
    none_cfg = (work / 'configs' / 'full@none.py').read_text()
    assert 'EffectiveRankLoss' in none_cfg
    assert (work / 'spectra.png').stat().st_size > 0
    assert '| full@none |' in (work / 'ablation.md').read_text()
    # the fine-tuning arm: scratch and both inits on 1 volume, plus the
    # pretrained-only diagnosis recipe for the first init (not for scratch)
    ft = json.loads((work / 'finetune.json').read_text())
    rows = {(r['init'], r['recipe'], r['volumes']) for r in ft['rows']}
    assert rows == {('scratch', 'default', 1), ('full', 'default', 1),
                    ('mocov2', 'default', 1), ('full', 'lpft', 1)}
    lpft = (work / 'configs' / 'finetune' / 'lpft_ssl.py').read_text()
    assert 'FrozenBackboneWarmupHook' in lpft
    assert '| full | lpft | 1 |' in (work / 'finetune.md').read_text()
    # a second run finds every result and only reports
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and '| full |' in again.stdout
