"""medssl.cli (light argparse helpers), run_logged, benchmark helpers."""
import subprocess
import sys

import pytest

from medssl.cli import HelpFormatter, add_device_arg, resolve_device
from medssl.utils.benchmark import PeakRSS, format_table, time_calls
from medssl.utils.process import run_logged


def test_help_shows_defaults_and_keeps_example_lines():
    import argparse
    p = argparse.ArgumentParser(formatter_class=HelpFormatter,
                                epilog='example:\n  tool a\n  tool b')
    p.add_argument('--n', type=int, default=3, help='how many')
    add_device_arg(p)
    text = p.format_help()
    assert 'how many (default: 3)' in text
    assert '(default: auto)' in text
    assert 'example:\n  tool a\n  tool b' in text


def test_help_states_each_default_once():
    """A default explained in words is not followed by ``(default: None)``,
    a positional without default shows none; tools/analysis_tools/
    data_efficiency.py --help printed '(default: work dir) (default:
    None)'."""
    import argparse
    import os.path as osp
    p = argparse.ArgumentParser(formatter_class=HelpFormatter)
    p.add_argument('config', nargs='?', help='a config')
    p.add_argument('--out-dir', default=None,
                   help='output folder (default: the work dir)')
    p.add_argument('--n', type=int, default=None, help='how many')
    text = ' '.join(p.format_help().split())
    assert 'config a config options:' in text
    assert 'output folder (default: the work dir) --n' in text
    assert 'how many (default: None)' in text
    tool = osp.join(osp.dirname(__file__), '..', '..', 'tools',
                    'analysis_tools', 'data_efficiency.py')
    out = subprocess.run([sys.executable, tool, '--help'], check=True,
                         capture_output=True, text=True).stdout
    text = ' '.join(out.split())
    assert 'where CSV/PNG/summary go (default: work dir) --ckpt-prefix' in text
    assert 'or own without random-init runs) --no-random' in text
    assert "(default: counted in the config's training split) --collect" in text
    assert text.count('(default: None)') == 1  # --collect only
    assert 'config downstream (mmseg) config options:' in text


def test_resolve_device():
    import torch
    assert resolve_device('cpu') == 'cpu'
    assert resolve_device('cuda:1') == 'cuda:1'
    want = 'cuda' if torch.cuda.is_available() else 'cpu'
    assert resolve_device('auto') == want


def test_medssl_cli_import_is_light():
    """No torch / mmengine behind `import medssl.cli` (tools parse their
    arguments before heavy imports)."""
    code = ('import sys, medssl.cli; '
            'print(sorted(m for m in ("torch", "mmengine", "mmcv", "numpy") '
            'if m in sys.modules))')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out == '[]'


def test_run_logged_writes_log_and_names_failure(tmp_path):
    log = tmp_path / 'sub' / 'ok.log'
    run_logged([sys.executable, '-c', 'print("hello")'], str(log))
    assert log.read_text() == 'hello\n'
    bad = tmp_path / 'bad.log'
    with pytest.raises(RuntimeError) as e:
        run_logged([sys.executable, '-c',
                    'import sys; print("boom"); sys.exit(3)'], str(bad))
    msg = str(e.value)
    assert 'failed (3)' in msg and str(bad) in msg and 'boom' in msg


def test_time_calls_counts_and_table():
    calls = []
    times = time_calls(lambda: calls.append(1), iters=3, warmup=2)
    assert len(times) == 3 and len(calls) == 5
    assert all(t >= 0 for t in times)
    with PeakRSS() as mem:
        # > 32 MiB: glibc always mmaps it (its dynamic mmap threshold tops
        # out at 32 MiB), so touching the pages grows the RSS even when
        # earlier tests left freed heap behind
        block = bytearray(64 * 2**20)
        block[::4096] = b'x' * len(block[::4096])
    assert mem.delta >= 32 * 2**20
    table = format_table([('a', 1), ('bbb', 22)], ('name', 'n'))
    assert table.splitlines() == ['| name | n  |', '|------|----|',
                                  '| a    | 1  |', '| bbb  | 22 |']
