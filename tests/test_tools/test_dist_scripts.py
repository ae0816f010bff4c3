"""tools/dist_*.sh without (enough) arguments: a usage line, exit code 2,
no bash ``unbound variable`` message and no torchrun started."""
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _run(script, *args):
    return subprocess.run(['bash', str(ROOT / 'tools' / script), *args],
                          capture_output=True, text=True, timeout=30)


@pytest.mark.parametrize('script,args,usage', [
    ('dist_run.sh', (), 'TOOL.py NGPUS'),
    ('dist_run.sh', ('train.py', ), 'TOOL.py NGPUS'),
    ('dist_train.sh', (), 'CONFIG NGPUS'),
    ('dist_train.sh', ('cfg.py', ), 'CONFIG NGPUS'),
    ('dist_test.sh', (), 'CONFIG CHECKPOINT NGPUS'),
    ('dist_test.sh', ('cfg.py', 'ckpt.pth'), 'CONFIG CHECKPOINT NGPUS'),
])
def test_missing_arguments_print_usage(script, args, usage):
    res = _run(script, *args)
    assert res.returncode == 2
    assert res.stderr == f'usage: bash tools/{script} {usage}' + (
        ' [tool args]\n' if script == 'dist_run.sh' else
        f' [{"train" if "train" in script else "test"}.py args]\n')
    assert res.stdout == ''


@pytest.mark.parametrize('args,message', [
    (('train.py', '0'), "NGPUS must be a positive integer, got '0'"),
    (('train.py', 'two'), "NGPUS must be a positive integer, got 'two'"),
    (('nope.py', '2'), 'no tool '),
])
def test_bad_arguments_are_named(args, message):
    res = _run('dist_run.sh', *args)
    assert res.returncode == 2
    assert res.stderr.startswith('error: ') and message in res.stderr
    assert 'unbound variable' not in res.stderr
    assert len(res.stderr.splitlines()) == 1
