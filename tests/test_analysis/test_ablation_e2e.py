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
           '--probe-iters', '2', '--work-dir', str(work)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    report = json.loads((work / 'ablation.json').read_text())
    names = {r['variant'] for r in report['records']}
    assert names == {'random', 'mocov2', 'full', 'full@none'}
    for rec in report['records']:
        assert rec['backbone_erank'] >= 1.0 and rec['mDice'] is not None
    # the patched configs are written for re-running by hand
    none_cfg = (work / 'configs' / 'full@none.py').read_text()
    assert 'SpectralDecorrelationLoss' in none_cfg
    assert (work / 'spectra.png').stat().st_size > 0
    assert '| full@none |' in (work / 'ablation.md').read_text()
    # a second run finds every result and only reports
    again = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert again.returncode == 0 and '| full |' in again.stdout
