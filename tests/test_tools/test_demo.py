"""The main job (tools/demo.py) end to end, with the smallest settings."""
import json
import os.path as osp
import subprocess
import sys

import pytest

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


@pytest.mark.slow
def test_demo_end_to_end(tmp_path):
    work = tmp_path / 'demo'
    proc = subprocess.run(
        [sys.executable, osp.join(REPO, 'tools', 'demo.py'), '--work-dir',
         str(work), '--pretrain-iters', '3', '--probe-iters', '3',
         '--abdomen-cases', '2', '--shape', '48', '48', '8'],
        capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert '[6/6]' in proc.stdout
    res = json.loads((work / 'demo_results.json').read_text())
    assert list(res['dice']) == ['random', 'mocov2', 'medmoco']
    for metrics in res['dice'].values():
        organs = [k for k in metrics if k.startswith('Dice.')]
        assert len(organs) == 13  # the BTCV organs
        assert 0 <= metrics['mDice'] <= 100
    assert set(res['collapse']) == {'random', 'mocov2', 'medmoco'}
    # each checkpoint is embedded with its own config: only the full
    # method has a decorrelated output
    for name, report in res['collapse'].items():
        assert set(report['embeddings']) == {'backbone', 'projector'} | (
            {'decorrelated'} if name == 'medmoco' else set())
    assert (work / 'spectra.png').stat().st_size > 10000
    table = (work / 'demo_results.md').read_text()
    assert '| **mDice** |' in table and 'liver' in table
