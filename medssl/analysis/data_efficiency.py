"""Data-efficiency protocol (Rettenberger et al.; see METHOD.md).

Fine-tune every pretrained checkpoint (plus random init) with a fraction
``r`` of the labelled training *volumes* for several seeds, test, and compare.

Math (small pure functions, tested against hand computations):

* :func:`annotation_efficiency_integral`:
  ``AEI = int_{r_min}^{r_max} score(r) dr / ((r_max - r_min) * score_ref)``
  where ``score(r)`` is the per-fraction **mean** score, linearly interpolated
  between the measured fractions (trapezoid rule, exact for piecewise linear
  interpolation), ``[r_min, r_max]`` is the measured range and ``score_ref``
  ("score_full_supervised" in METHOD.md) is, by default, the mean score of
  the **same method** at the largest measured fraction (normally r = 1.0, all
  labels). With ``reference='random'`` (or any method name) ``score_ref`` is
  that method's mean at its largest fraction instead, which makes the AEIs of
  different methods directly comparable. An AEI of 1 means "a flat curve at
  the full-supervision score".
* :func:`welch_greater`: one-sided Welch t-test (unequal variances) that a
  method's scores over seeds are greater than random init's at the same
  fraction: ``scipy.stats.ttest_ind(a, b, equal_var=False,
  alternative='greater')``.

Running: :class:`Job` describes one (method, fraction, seed) fine-tuning;
:func:`run_jobs` calls injectable ``train_fn(job) -> checkpoint`` and
``test_fn(job, checkpoint) -> score`` callables (the defaults,
:class:`SubprocessRunner`, launch ``tools/train.py`` / ``tools/test.py``), so
tests can use a fake runner.
"""
import csv
import glob
import json
import math
import os
import os.path as osp
import shlex
import subprocess
import sys
from collections import OrderedDict, defaultdict
from dataclasses import asdict, dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'RANDOM_INIT', 'Job', 'annotation_efficiency_integral', 'welch_greater',
    'group_scores', 'summarize', 'job_cfg_options', 'make_jobs',
    'train_command', 'test_command', 'read_metric', 'find_checkpoint',
    'SubprocessRunner', 'run_jobs', 'collect_results', 'write_csv', 'read_csv',
    'plot_curves', 'parse_checkpoints'
]

RANDOM_INIT = 'random'
CSV_FIELDS = ('method', 'fraction', 'seed', 'dice')


# --------------------------------------------------------------------------
# math
# --------------------------------------------------------------------------
def annotation_efficiency_integral(
        fractions: Sequence[float],
        scores: Sequence[float],
        reference_score: Optional[float] = None) -> float:
    """Normalised area under the piecewise-linear score(r) curve.

    Args:
        fractions: measured label fractions (any order, no duplicates).
        scores: score at each fraction (e.g. the mean Dice over seeds).
        reference_score: ``score_full_supervised``; defaults to the score at
            the largest fraction.

    Returns:
        ``trapz(scores, fractions) / ((r_max - r_min) * reference_score)``.
        With a single fraction the integral degenerates to
        ``score / reference_score``.
    """
    r = np.asarray(fractions, dtype=np.float64)
    s = np.asarray(scores, dtype=np.float64)
    if r.shape != s.shape or r.size == 0:
        raise ValueError('fractions and scores must be non-empty and of the '
                         f'same length, got {r.shape} and {s.shape}')
    order = np.argsort(r)
    r, s = r[order], s[order]
    if np.any(np.diff(r) == 0):
        raise ValueError(f'duplicate fractions: {r.tolist()}')
    if reference_score is None:
        reference_score = float(s[-1])
    if reference_score == 0:
        return float('nan')
    if r.size == 1:
        return float(s[0] / reference_score)
    area = float(np.sum((r[1:] - r[:-1]) * (s[1:] + s[:-1]) / 2.))
    return area / (float(r[-1] - r[0]) * float(reference_score))


def welch_greater(scores: Sequence[float],
                  baseline: Sequence[float]) -> Tuple[float, float]:
    """One-sided Welch t-test H1: mean(scores) > mean(baseline).

    Returns ``(t, p)``; ``(nan, nan)`` when either side has < 2 values.
    """
    a = np.asarray(scores, dtype=np.float64)
    b = np.asarray(baseline, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        return float('nan'), float('nan')
    from scipy import stats
    res = stats.ttest_ind(a, b, equal_var=False, alternative='greater')
    return float(res.statistic), float(res.pvalue)


def group_scores(records: Sequence[Dict]) -> Dict[str, Dict[float, List]]:
    """``{method: {fraction: [score per seed, ordered by seed]}}``.

    Records with a non-finite score are dropped.
    """
    tmp = defaultdict(lambda: defaultdict(list))
    for rec in records:
        score = float(rec['dice'])
        if not math.isfinite(score):
            continue
        tmp[rec['method']][float(rec['fraction'])].append(
            (int(rec['seed']), score))
    out = OrderedDict()
    for method, by_frac in tmp.items():
        out[method] = OrderedDict(
            (f, [s for _, s in sorted(v)]) for f, v in sorted(by_frac.items()))
    return out


def summarize(records: Sequence[Dict],
              baseline: str = RANDOM_INIT,
              reference: Optional[str] = None) -> Dict:
    """Per-method curves, AEI and t-tests against ``baseline``.

    Args:
        records: dicts with ``method``, ``fraction``, ``seed``, ``dice``.
        baseline: method the t-tests compare against (random init).
        reference: method whose mean score at its largest fraction is the
            AEI's ``score_full_supervised``; None = each method's own.

    Returns:
        ``{method: {'fractions', 'mean', 'std' (sample std, ddof=1; 0 for a
        single seed), 'n', 'aei', 'reference_score', 'ttest': {fraction:
        {'t', 'p'}}}}``.
    """
    grouped = group_scores(records)
    ref_score = None
    if reference is not None:
        if reference not in grouped:
            raise KeyError(f'reference method {reference!r} has no results')
        ref_fracs = grouped[reference]
        ref_score = float(np.mean(ref_fracs[max(ref_fracs)]))
    out = OrderedDict()
    for method, by_frac in grouped.items():
        fracs = list(by_frac)
        means = [float(np.mean(v)) for v in by_frac.values()]
        stds = [
            float(np.std(v, ddof=1)) if len(v) > 1 else 0.
            for v in by_frac.values()
        ]
        this_ref = ref_score if ref_score is not None else means[-1]
        tests = OrderedDict()
        if method != baseline and baseline in grouped:
            for f, v in by_frac.items():
                if f in grouped[baseline]:
                    t, p = welch_greater(v, grouped[baseline][f])
                    tests[f] = dict(t=t, p=p)
        out[method] = dict(fractions=fracs,
                           mean=means,
                           std=stds,
                           n=[len(v) for v in by_frac.values()],
                           aei=annotation_efficiency_integral(
                               fracs, means, this_ref),
                           reference_score=this_ref,
                           ttest=tests)
    return out


# --------------------------------------------------------------------------
# jobs and commands
# --------------------------------------------------------------------------
@dataclass
class Job:
    """One fine-tuning run."""
    method: str
    checkpoint: Optional[str]  # None = random init
    fraction: float
    seed: int
    work_dir: str
    extra_cfg_options: List[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f'{self.method}_frac{self.fraction:g}_seed{self.seed}'


def parse_checkpoints(items: Sequence[str]) -> 'OrderedDict[str, str]':
    """``['name=path', ...]`` -> ordered dict (a bare path is named by its
    file stem)."""
    out = OrderedDict()
    for item in items or []:
        if '=' in item:
            name, path = item.split('=', 1)
        else:
            path = item
            name = osp.splitext(osp.basename(item))[0]
        if name == RANDOM_INIT:
            raise ValueError(f'{RANDOM_INIT!r} is reserved for random init')
        if name in out:
            raise ValueError(f'duplicate checkpoint name {name!r}')
        out[name] = path
    return out


def make_jobs(checkpoints: Dict[str, Optional[str]],
              fractions: Sequence[float],
              seeds: Sequence[int],
              work_root: str,
              add_random: bool = True) -> List[Job]:
    """All (method, fraction, seed) jobs; random init is added first."""
    methods = OrderedDict()
    if add_random:
        methods[RANDOM_INIT] = None
    methods.update(checkpoints)
    jobs = []
    for method, ckpt in methods.items():
        for frac in fractions:
            for seed in seeds:
                job = Job(method, ckpt, float(frac), int(seed), '')
                job.work_dir = osp.join(work_root, job.name)
                jobs.append(job)
    return jobs


def backbone_has_init_cfg(config: str) -> bool:
    """Whether ``config`` sets ``model.backbone.init_cfg`` (to a dict or
    None). Then a new init_cfg must replace it with ``_delete_=True``
    (mmengine refuses to merge a dict into None); without the key, ``_delete_``
    is not consumed and would reach the initializer, so it must be left out."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    return 'init_cfg' in cfg.get('model', {}).get('backbone', {})


def job_cfg_options(job: Job,
                    ckpt_prefix: str = 'backbone.',
                    init_type: str = 'VerifiedPretrained',
                    replace_init: bool = True) -> List[str]:
    """``--cfg-options`` items for a job (``key=value`` strings).

    Sets the case fraction and its sampling seed, the global seed and the
    backbone initialisation: an ``init_type`` init_cfg (default medssl's
    ``VerifiedPretrained``, which fails loudly on shape mismatches or mostly
    missing keys; mmengine's ``Pretrained`` also works) reading the keys under
    ``ckpt_prefix`` of the SSL checkpoint, or ``init_cfg=None`` (random init).
    ``replace_init``: the config already sets an init_cfg (see
    :func:`backbone_has_init_cfg`), so ``_delete_=True`` is added.
    The job's ``extra_cfg_options`` come last.
    """
    opts = [
        f'train_dataloader.dataset.case_fraction={job.fraction:g}',
        f'train_dataloader.dataset.fraction_seed={job.seed}',
        f'randomness.seed={job.seed}',
        'model.pretrained=None',
    ]
    if job.checkpoint is None:
        opts.append('model.backbone.init_cfg=None')
    else:
        if replace_init:
            opts.append('model.backbone.init_cfg._delete_=True')
        opts += [
            f'model.backbone.init_cfg.type={init_type}',
            f'model.backbone.init_cfg.checkpoint={job.checkpoint}',
        ]
        if ckpt_prefix:
            opts.append(f'model.backbone.init_cfg.prefix={ckpt_prefix}')
    return opts + list(job.extra_cfg_options)


def _repo_root() -> str:
    return osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))


def train_command(config: str,
                  job: Job,
                  launcher: str = 'python',
                  gpus: int = 1,
                  ckpt_prefix: str = 'backbone.',
                  init_type: str = 'VerifiedPretrained',
                  replace_init: Optional[bool] = None,
                  python: str = sys.executable) -> List[str]:
    """argv of the fine-tuning run: ``launcher='python'`` runs
    ``tools/train.py`` in this interpreter, ``'dist'`` the cluster script
    ``tools/dist_train.sh CONFIG GPUS``. ``replace_init=None`` reads the
    config to decide (:func:`backbone_has_init_cfg`)."""
    if replace_init is None:
        replace_init = job.checkpoint is not None and \
            backbone_has_init_cfg(config)
    root = _repo_root()
    if launcher == 'dist':
        cmd = [
            'bash',
            osp.join(root, 'tools', 'dist_train.sh'), config,
            str(gpus)
        ]
    else:
        cmd = [python, osp.join(root, 'tools', 'train.py'), config]
    cmd += ['--work-dir', job.work_dir, '--cfg-options']
    cmd += job_cfg_options(job, ckpt_prefix, init_type, replace_init)
    return cmd


def test_command(config: str,
                 job: Job,
                 checkpoint: str,
                 launcher: str = 'python',
                 gpus: int = 1,
                 python: str = sys.executable) -> List[str]:
    """argv of the test run (``tools/test.py`` / ``tools/dist_test.sh``)
    writing into ``<work_dir>/test``; the job's ``extra_cfg_options`` are
    passed on (e.g. a data_root)."""
    root = _repo_root()
    test_dir = osp.join(job.work_dir, 'test')
    if launcher == 'dist':
        cmd = [
            'bash',
            osp.join(root, 'tools', 'dist_test.sh'), config, checkpoint,
            str(gpus), '--work-dir', test_dir
        ]
    else:
        cmd = [
            python,
            osp.join(root, 'tools', 'test.py'), config, checkpoint,
            '--work-dir', test_dir
        ]
    if job.extra_cfg_options:
        cmd += ['--cfg-options'] + list(job.extra_cfg_options)
    return cmd


# --------------------------------------------------------------------------
# reading results
# --------------------------------------------------------------------------
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


def read_metric(work_dir: str, key: str = 'mDice') -> Optional[float]:
    """``mDice`` from the newest JSON (or JSON-lines) file under
    ``work_dir`` that has one; None if there is none.

    Accepts the ``VolumeDiceMetric`` JSON and mmengine's ``<ts>/<ts>.json``
    scalar logs (keys like ``VolumeDice/mDice``).
    """
    assert key == 'mDice', 'only mDice is looked up'
    files = glob.glob(osp.join(work_dir, '**', '*.json'), recursive=True)
    files.sort(key=lambda p: (osp.getmtime(p), p), reverse=True)
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


def find_checkpoint(work_dir: str) -> Optional[str]:
    """Checkpoint named by mmengine's ``last_checkpoint`` file, else the
    newest ``*.pth`` in ``work_dir``."""
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


# --------------------------------------------------------------------------
# running
# --------------------------------------------------------------------------
class SubprocessRunner:
    """Default ``train_fn`` / ``test_fn``: run ``tools/train.py`` and
    ``tools/test.py`` as subprocesses (sequentially).

    Logs of each step go to ``<work_dir>/{train,test}.out``.
    """

    def __init__(self,
                 config: str,
                 ckpt_prefix: str = 'backbone.',
                 init_type: str = 'VerifiedPretrained',
                 env: Optional[Dict[str, str]] = None,
                 timeout: Optional[float] = None):
        self.config = config
        self.ckpt_prefix = ckpt_prefix
        self.init_type = init_type
        self._replace_init = None
        self.env = env
        self.timeout = timeout

    def _run(self, cmd: List[str], log_path: str) -> None:
        os.makedirs(osp.dirname(log_path), exist_ok=True)
        env = dict(os.environ if self.env is None else self.env)
        with open(log_path, 'w') as log:
            proc = subprocess.run(cmd,
                                  stdout=log,
                                  stderr=subprocess.STDOUT,
                                  env=env,
                                  cwd=_repo_root(),
                                  timeout=self.timeout)
        if proc.returncode != 0:
            with open(log_path) as f:
                tail = f.read()[-3000:]
            raise RuntimeError(f'command failed ({proc.returncode}): '
                               f'{shlex.join(cmd)}\n{tail}')

    def train(self, job: Job) -> str:
        if self._replace_init is None:
            self._replace_init = backbone_has_init_cfg(self.config)
        self._run(
            train_command(self.config,
                          job,
                          ckpt_prefix=self.ckpt_prefix,
                          init_type=self.init_type,
                          replace_init=self._replace_init),
            osp.join(job.work_dir, 'train.out'))
        ckpt = find_checkpoint(job.work_dir)
        if ckpt is None:
            raise RuntimeError(f'no checkpoint in {job.work_dir}')
        return ckpt

    def test(self, job: Job, checkpoint: str) -> float:
        self._run(test_command(self.config, job, checkpoint),
                  osp.join(job.work_dir, 'test.out'))
        score = read_metric(osp.join(job.work_dir, 'test'))
        if score is None:
            raise RuntimeError(f'no mDice JSON under {job.work_dir}/test')
        return score


def run_jobs(jobs: Sequence[Job],
             train_fn: Callable[[Job], str],
             test_fn: Callable[[Job, str], float],
             progress: bool = True,
             skip_done: bool = True) -> List[Dict]:
    """Run each job (train then test) and return the result records.

    A job whose ``work_dir`` already has a ``result.json`` is not re-run when
    ``skip_done``. A failing job is recorded with ``dice = nan`` and its
    error, and the protocol goes on.
    """
    records = []
    iterator = jobs
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(jobs))
    for job in iterator:
        result_path = osp.join(job.work_dir, 'result.json')
        rec = None
        if skip_done and osp.isfile(result_path):
            with open(result_path) as f:
                rec = json.load(f)
            if not math.isfinite(float(rec.get('dice', float('nan')))):
                rec = None
        if rec is None:
            rec = dict(method=job.method,
                       fraction=job.fraction,
                       seed=job.seed,
                       dice=float('nan'),
                       checkpoint=job.checkpoint)
            try:
                ckpt = train_fn(job)
                rec['dice'] = float(test_fn(job, ckpt))
                rec['finetuned'] = ckpt
            except Exception as exc:  # noqa: BLE001 (keep the protocol going)
                rec['error'] = f'{type(exc).__name__}: {exc}'[-2000:]
            os.makedirs(job.work_dir, exist_ok=True)
            with open(result_path, 'w') as f:
                json.dump(rec, f, indent=2)
        records.append(rec)
        if progress:
            bar.update()
    if progress:
        sys.stdout.write('\n')
    return records


def collect_results(work_root: str) -> List[Dict]:
    """Records of finished runs under ``work_root``: every ``result.json``,
    or, for runs launched with ``--print-commands`` (no ``result.json``), the
    mDice JSON found in ``<run>/test`` with method/fraction/seed parsed from
    the run directory name ``<method>_frac<r>_seed<s>``."""
    records = []
    for d in sorted(glob.glob(osp.join(work_root, '*'))):
        if not osp.isdir(d):
            continue
        res = osp.join(d, 'result.json')
        if osp.isfile(res):
            with open(res) as f:
                records.append(json.load(f))
            continue
        name = osp.basename(d)
        try:
            method, rest = name.rsplit('_frac', 1)
            frac, seed = rest.split('_seed')
            frac, seed = float(frac), int(seed)
        except ValueError:
            continue
        score = read_metric(osp.join(d, 'test'))
        if score is not None:
            records.append(
                dict(method=method, fraction=frac, seed=seed, dice=score))
    return records


# --------------------------------------------------------------------------
# outputs
# --------------------------------------------------------------------------
def write_csv(records: Sequence[Dict], path: str) -> None:
    """CSV with columns method, fraction, seed, dice."""
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    with open(path, 'w', newline='') as f:
        writer = csv.DictWriter(f,
                                fieldnames=CSV_FIELDS,
                                extrasaction='ignore')
        writer.writeheader()
        for rec in sorted(records,
                          key=lambda r:
                          (r['method'], float(r['fraction']), int(r['seed']))):
            writer.writerow({k: rec[k] for k in CSV_FIELDS})


def read_csv(path: str) -> List[Dict]:
    with open(path, newline='') as f:
        return [
            dict(method=row['method'],
                 fraction=float(row['fraction']),
                 seed=int(row['seed']),
                 dice=float(row['dice'])) for row in csv.DictReader(f)
        ]


def plot_curves(summary: Dict,
                path: str,
                log_x: bool = True,
                ylabel: str = 'mDice') -> None:
    """Score vs label fraction, mean +- std over seeds, one line/method."""
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6, 4))
    for method, s in summary.items():
        x = np.asarray(s['fractions'])
        m, sd = np.asarray(s['mean']), np.asarray(s['std'])
        ax.plot(x, m, marker='o', label=f"{method} (AEI {s['aei']:.3f})")
        ax.fill_between(x, m - sd, m + sd, alpha=0.2)
    if log_x and all(f > 0 for s in summary.values() for f in s['fractions']):
        ax.set_xscale('log')
    ax.set_xlabel('fraction of labelled training volumes')
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def jobs_to_dicts(jobs: Sequence[Job]) -> List[Dict]:
    return [asdict(j) for j in jobs]
