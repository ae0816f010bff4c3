"""Data-efficiency protocol running: train + test each job (subprocesses
by default, injectable for tests), resumable, and reading results back."""
import glob
import json
import math
import os
import os.path as osp
import re
import sys
import warnings
from typing import Callable, Dict, List, Optional, Sequence

from medssl.utils.atomic import atomic_write_bytes
from medssl.utils.process import run_logged
from .planning import (Job, backbone_has_init_cfg, repo_root, save_best_key,
                       test_command, train_command)

__all__ = [
    'read_metric', 'best_checkpoint_glob', 'find_checkpoint',
    'checkpoint_kind', 'SubprocessRunner',
    'job_record', 'run_jobs', 'collect_results', 'read_tested_checkpoint'
]


def _find_mdice(obj) -> Optional[float]:
    """First value whose key is ``mDice`` or ends with ``/mDice``."""
    if isinstance(obj, dict):
        for k, v in obj.items():
            if (k == 'mDice' or str(k).endswith('/mDice')) and \
                    isinstance(v, (int, float)):
                return float(v)
        for v in obj.values():
            found = _find_mdice(v)
            if found is not None:
                return found
    return None


def read_metric(work_dir: str) -> Optional[float]:
    """``mDice`` of a ``tools/test.py`` run: ``<work_dir>/volume_dice.json``
    (where tools/test.py writes it), else the newest JSON / JSON-lines file
    under ``work_dir`` that has one (mmengine's ``scalars.json``, keys like
    ``VolumeDice/mDice``); None if there is none."""
    files = glob.glob(osp.join(work_dir, '**', '*.json'), recursive=True)
    files.sort(key=lambda p: (osp.basename(p) == 'volume_dice.json' and
                              osp.dirname(p) == work_dir, osp.getmtime(p), p),
               reverse=True)
    for path in files:
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        candidates = []
        try:
            candidates.append(json.loads(text))
        except ValueError:
            for line in text.splitlines():
                try:
                    candidates.append(json.loads(line))
                except ValueError:
                    pass
        for obj in reversed(candidates):  # last line = final result
            val = _find_mdice(obj)
            if val is not None:
                return val
    return None


def best_checkpoint_glob(save_best: str) -> str:
    """File pattern of mmengine's best-on-val checkpoint for a ``save_best``
    key (``best_<key>_<iter|epoch>_<n>.pth``, '/' in the key as '_')."""
    if save_best == 'auto':
        return 'best_*.pth'
    return f"best_{save_best.replace('/', '_')}_*.pth"


def find_checkpoint(work_dir: str,
                    save_best: Optional[str] = None) -> Optional[str]:
    """The checkpoint to test: with ``save_best`` (the config's
    ``default_hooks.checkpoint.save_best``) the best-on-val one mmengine
    keeps as ``best_<key>_<iter|epoch>_<n>.pth``; otherwise, or when there is
    none (a warning says so), the one named by ``last_checkpoint``, else the
    newest ``*.pth`` in ``work_dir``."""
    if save_best:
        pattern = best_checkpoint_glob(save_best)
        best = glob.glob(osp.join(work_dir, pattern))
        if best:
            return max(best, key=osp.getmtime)
        warnings.warn(f'{work_dir}: save_best={save_best!r} but no {pattern} '
                      '(no validation ran?): testing the last checkpoint')
    last = osp.join(work_dir, 'last_checkpoint')
    if osp.isfile(last):
        with open(last) as f:
            path = f.read().strip()
        if path and not osp.isabs(path):
            path = osp.join(work_dir, path)
        if path and osp.isfile(path):
            return path
    pths = glob.glob(osp.join(work_dir, '*.pth'))
    return max(pths, key=osp.getmtime) if pths else None


def checkpoint_kind(path: str) -> str:
    """``'best'`` for a best-on-val checkpoint (mmengine's ``best_*`` name),
    else ``'last'``."""
    return 'best' if osp.basename(path).startswith('best_') else 'last'


class SubprocessRunner:
    """Default ``train_fn`` / ``test_fn``: run ``tools/train.py`` and
    ``tools/test.py`` as subprocesses, one job after the other; with
    ``gpus > 1`` through ``tools/dist_train.sh`` / ``dist_test.sh`` on that
    many GPUs. Logs go to ``<work_dir>/{train,test}.out``. The checkpoint
    tested is the one chosen on val when the config sets ``save_best``
    (:func:`find_checkpoint`), the last one otherwise."""

    def __init__(self,
                 config: str,
                 ckpt_prefix: str = 'backbone.',
                 init_type: str = 'VerifiedPretrained',
                 gpus: int = 1,
                 env: Optional[Dict[str, str]] = None,
                 timeout: Optional[float] = None):
        self.config = config
        self.ckpt_prefix = ckpt_prefix
        self.init_type = init_type
        self.gpus = gpus
        self.launcher = 'dist' if gpus > 1 else 'python'
        self._replace_init = None
        self._save_best = {}  # extra cfg-options -> save_best key
        self.env = env
        self.timeout = timeout

    def _run(self, cmd: List[str], log_path: str) -> None:
        env = dict(os.environ if self.env is None else self.env)
        run_logged(cmd, log_path, cwd=repo_root(), env=env,
                   timeout=self.timeout)

    def train(self, job: Job) -> str:
        if self._replace_init is None:
            self._replace_init = backbone_has_init_cfg(self.config,
                                                       self.init_type)
        self._run(
            train_command(self.config, job, launcher=self.launcher,
                          gpus=self.gpus, ckpt_prefix=self.ckpt_prefix,
                          init_type=self.init_type,
                          replace_init=self._replace_init
                          and job.checkpoint is not None),
            osp.join(job.work_dir, 'train.out'))
        opts = tuple(job.extra_cfg_options)
        if opts not in self._save_best:
            self._save_best[opts] = save_best_key(self.config, opts)
        ckpt = find_checkpoint(job.work_dir, self._save_best[opts])
        if ckpt is None:
            raise RuntimeError(f'no checkpoint in {job.work_dir}')
        return ckpt

    def test(self, job: Job, checkpoint: str) -> float:
        self._run(test_command(self.config, job, checkpoint,
                               launcher=self.launcher, gpus=self.gpus),
                  osp.join(job.work_dir, 'test.out'))
        score = read_metric(osp.join(job.work_dir, 'test'))
        if score is None:
            raise RuntimeError(f'no mDice JSON under {job.work_dir}/test')
        return score


def job_record(job: Job, dice: float = float('nan')) -> Dict:
    """The result record of a job: ``fraction`` is the true fraction
    (volumes trained on / training volumes), ``nominal_fraction`` the one
    asked for."""
    return dict(method=job.method, fraction=job.true_fraction,
                num_volumes=job.num_volumes, total_volumes=job.total_volumes,
                nominal_fraction=job.fraction, seed=job.seed, dice=dice,
                checkpoint=job.checkpoint, tested=None)


def run_jobs(jobs: Sequence[Job],
             train_fn: Callable[[Job], str],
             test_fn: Callable[[Job, str], float],
             progress: bool = True,
             skip_done: bool = True) -> List[Dict]:
    """Run each job (train then test) and return the result records
    (:func:`job_record`).

    A job whose ``work_dir`` already has a ``result.json`` with a finite
    score is not re-run when ``skip_done``. A failing job is recorded with
    ``dice = nan`` and its error, and the protocol goes on.
    """
    records = []
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(jobs))
    for job in jobs:
        result_path = osp.join(job.work_dir, 'result.json')
        rec = None
        if skip_done and osp.isfile(result_path):
            with open(result_path) as f:
                rec = json.load(f)
            if not math.isfinite(float(rec.get('dice', float('nan')))):
                rec = None
        if rec is None:
            rec = job_record(job)
            try:
                ckpt = train_fn(job)
                rec['dice'] = float(test_fn(job, ckpt))
                rec['finetuned'] = ckpt
                rec['tested'] = checkpoint_kind(ckpt)
            except Exception as exc:  # noqa: BLE001 (keep the protocol going)
                rec['error'] = f'{type(exc).__name__}: {exc}'[-2000:]
            # all or nothing: the file marks the run done for a rerun
            atomic_write_bytes(result_path,
                               json.dumps(rec, indent=2).encode(),
                               durable=False)
        records.append(rec)
        if progress:
            bar.update()
    if progress:
        sys.stdout.write('\n')
    return records


_NAME = re.compile(r'^(?P<method>.+)_(?P<k>\d+)of(?P<n>\d+)vol'
                   r'_seed(?P<seed>-?\d+)$')


def collect_results(work_root: str) -> List[Dict]:
    """Records of finished runs under ``work_root``: every ``result.json``,
    or, for runs launched with ``--print-commands`` (no ``result.json``), the
    mDice found in ``<run>/test`` with method, volume count and seed parsed
    from the run directory name ``<method>_<k>of<N>vol_seed<s>`` and the
    tested checkpoint's kind from the test log. Run
    directories without a volume count (``<method>_frac<r>_seed<s>``, made
    before true fractions were recorded) are skipped with a warning."""
    records = []
    for d in sorted(glob.glob(osp.join(work_root, '*'))):
        if not osp.isdir(d):
            continue
        res = osp.join(d, 'result.json')
        m = _NAME.match(osp.basename(d))
        if osp.isfile(res):
            with open(res) as f:
                rec = json.load(f)
            if rec.get('fraction') is None:
                warnings.warn(f'{d}: no true fraction recorded; skipped')
                continue
            records.append(rec)
            continue
        if m is None:
            if '_frac' in osp.basename(d):
                warnings.warn(f'{d}: no volume count in the name (a run '
                              'planned before true fractions); skipped')
            continue
        score = read_metric(osp.join(d, 'test'))
        if score is not None:
            k, n = int(m['k']), int(m['n'])
            tested = read_tested_checkpoint(osp.join(d, 'test'))
            records.append(
                dict(method=m['method'], fraction=k / n, num_volumes=k,
                     total_volumes=n, nominal_fraction=None,
                     seed=int(m['seed']), dice=score,
                     tested=tested and checkpoint_kind(tested)))
    return records


# the line tools/test.py logs once it has loaded the checkpoint
_LOADED = re.compile(r'Load checkpoint from (?P<path>.+) \(strict\)')


def read_tested_checkpoint(test_dir: str) -> Optional[str]:
    """The checkpoint a ``tools/test.py`` run in ``test_dir`` loaded, from
    its newest log (None if no log names one)."""
    logs = glob.glob(osp.join(test_dir, '**', '*.log'), recursive=True)
    for path in sorted(logs, key=osp.getmtime, reverse=True):
        with open(path, errors='replace') as f:
            found = _LOADED.findall(f.read())
        if found:
            return found[-1].strip()
    return None
