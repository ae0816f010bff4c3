"""Run a tool as a subprocess with its output in a log file.

The demo, the ablation and the data-efficiency runner all start
``tools/*.py`` this way: output goes to a log file (not the console), and a
failure raises an error that names the command and shows the log's tail.
"""
import os
import os.path as osp
import shlex
import subprocess
import sys
from typing import Dict, List, Optional, Sequence

__all__ = [
    'run_logged', 'tool_command', 'schedule_options', 'REPO', 'repo_root'
]

#: The source checkout medssl runs from (holds ``tools/`` and ``configs/``):
#: the folder above the ``medssl`` package.
REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def repo_root() -> str:
    """The source checkout medssl runs from (:data:`REPO`)."""
    return REPO


def tool_command(script: str, *args: str) -> List[str]:
    """argv running ``tools/<script>`` with this interpreter."""
    return [sys.executable, osp.join(REPO, 'tools', script), *args]


def schedule_options(iters: int) -> List[str]:
    """``--cfg-options`` items shortening an iteration-based schedule to
    ``iters`` (the cosine/poly end follows; one checkpoint at the end)."""
    return [
        f'train_cfg.max_iters={iters}', f'param_scheduler.0.end={iters}',
        f'default_hooks.checkpoint.interval={iters}'
    ]


def run_logged(cmd: Sequence[str],
               log_path: str,
               cwd: Optional[str] = None,
               env: Optional[Dict[str, str]] = None,
               timeout: Optional[float] = None,
               tail_chars: int = 3000) -> None:
    """Run ``cmd`` with stdout and stderr written to ``log_path``.

    Raises:
        RuntimeError: the command exited non-zero; the message holds the
            exit code, the command (shell-quoted), the log path and the
            last ``tail_chars`` characters of the log.
        subprocess.TimeoutExpired: it ran longer than ``timeout`` seconds.
    """
    os.makedirs(osp.dirname(osp.abspath(log_path)), exist_ok=True)
    with open(log_path, 'w') as log:
        proc = subprocess.run(list(cmd), stdout=log,
                              stderr=subprocess.STDOUT, cwd=cwd, env=env,
                              timeout=timeout)
    if proc.returncode != 0:
        with open(log_path, errors='replace') as f:
            tail = f.read()[-tail_chars:]
        raise RuntimeError(
            f'command failed ({proc.returncode}): {shlex.join(cmd)}\n'
            f'--- last lines of {log_path} ---\n{tail}')
