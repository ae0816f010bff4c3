"""Data-efficiency protocol planning: jobs (method x fraction x seed), the
number of volumes each fraction really trains on, and the command lines of
``tools/train.py`` / ``tools/test.py`` (or the ``dist_*.sh`` launchers)."""
import argparse
import os.path as osp
import sys
import warnings
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence

from medssl.utils.process import repo_root
from .maths import OWN_REFERENCE, RANDOM_INIT

__all__ = [
    'Job', 'parse_checkpoints', 'volume_count', 'train_split_cases',
    'make_jobs', 'backbone_has_init_cfg', 'save_best_key', 'job_cfg_options',
    'train_command', 'test_command', 'repo_root'
]


@dataclass
class Job:
    """One fine-tuning run.

    ``fraction`` is the nominal fraction given to the dataset
    (``case_fraction``); the run trains on ``num_volumes`` of the
    ``total_volumes`` training volumes (``max(1, round(fraction * total))``,
    :func:`medssl.datasets.btcv.select_case_fraction`; given to the dataset
    as ``num_cases``, see :func:`job_cfg_options`), so its true fraction is
    ``num_volumes / total_volumes``.
    """
    method: str
    checkpoint: Optional[str]  # None = random init
    fraction: float
    seed: int
    work_dir: str
    extra_cfg_options: List[str] = field(default_factory=list)
    num_volumes: Optional[int] = None
    total_volumes: Optional[int] = None

    @property
    def true_fraction(self) -> Optional[float]:
        """Volumes trained on / training volumes (None when unknown)."""
        if self.num_volumes is not None and self.total_volumes:
            return self.num_volumes / self.total_volumes
        return 1.0 if self.fraction == 1 else None

    @property
    def name(self) -> str:
        if self.num_volumes is not None and self.total_volumes:
            return (f'{self.method}_{self.num_volumes}of'
                    f'{self.total_volumes}vol_seed{self.seed}')
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
        if name == OWN_REFERENCE:
            raise ValueError(f'{OWN_REFERENCE!r} is reserved (--reference '
                             f'{OWN_REFERENCE}: each method its own AEI '
                             'reference)')
        if name in out:
            raise ValueError(f'duplicate checkpoint name {name!r}')
        out[name] = path
    return out


def volume_count(fraction: float, total: int) -> int:
    """Volumes the dataset keeps for ``case_fraction=fraction`` out of
    ``total`` (the dataset's own rule, so the two cannot disagree)."""
    from medssl.datasets.btcv import select_case_fraction
    return len(select_case_fraction([str(i) for i in range(total)],
                                    fraction))


def _merged_config(config: str, cfg_options: Sequence[str] = ()):
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    return cfg


def train_split_cases(config: str,
                      cfg_options: Sequence[str] = ()) -> List[str]:
    """Case ids of the training split of ``config`` (after ``cfg_options``):
    ``<data_root>/<ann_file>`` of ``train_dataloader.dataset``, slice names
    ``<case>_<z>``."""
    cfg = _merged_config(config, cfg_options)
    ds = cfg.train_dataloader.dataset
    while 'dataset' in ds:  # wrappers (RepeatDataset, ...)
        ds = ds.dataset
    path = ds.get('ann_file', '')
    if not osp.isabs(path):
        path = osp.join(ds.get('data_root', '') or '', path)
    if not osp.isfile(path):
        raise FileNotFoundError(
            f'training split {path} of {config} not found: the true label '
            'fractions need the number of training volumes (convert the '
            'data, set data_root with --cfg-options, or pass '
            '--train-volumes N)')
    with open(path) as f:
        return sorted({ln.strip().rsplit('_', 1)[0] for ln in f
                       if ln.strip()})


def make_jobs(checkpoints: Dict[str, Optional[str]],
              fractions: Sequence[float],
              seeds: Sequence[int],
              work_root: str,
              add_random: bool = True,
              total_volumes: Optional[int] = None) -> List[Job]:
    """All (method, fraction, seed) jobs; random init is added first.

    With ``total_volumes`` each job knows its volume count; fractions that
    select the same count are run once (the first one given; a warning names
    the others), because they are the same experiment.
    """
    if total_volumes is not None:
        kept, seen = [], {}
        for f in fractions:
            k = volume_count(f, total_volumes)
            if k in seen:
                warnings.warn(f'fraction {f:g} selects {k}/{total_volumes} '
                              f'volumes like {seen[k]:g}: run once')
                continue
            seen[k] = f
            kept.append(f)
        fractions = kept
    methods = OrderedDict()
    if add_random:
        methods[RANDOM_INIT] = None
    methods.update(checkpoints)
    jobs = []
    for method, ckpt in methods.items():
        for frac in fractions:
            for seed in seeds:
                job = Job(method, ckpt, float(frac), int(seed), '')
                if total_volumes is not None:
                    job.num_volumes = volume_count(frac, total_volumes)
                    job.total_volumes = int(total_volumes)
                job.work_dir = osp.join(work_root, job.name)
                jobs.append(job)
    return jobs


def backbone_has_init_cfg(config: str,
                          keep_type: Optional[str] = 'VerifiedPretrained'
                          ) -> bool:
    """Whether ``config``'s ``model.backbone.init_cfg`` must be *replaced*
    (``_delete_=True``) to set a checkpoint: it is set (to a dict or None)
    and is not already a ``keep_type`` init. mmengine refuses to merge a
    dict into None; without the key, ``_delete_`` is not consumed and would
    reach the initializer, so it must be left out. An init_cfg of type
    ``keep_type`` is kept and only its checkpoint and prefix are set, so the
    transfer recipe it holds (e.g. ``rescale``, ``exclude``) applies."""
    from mmengine.config import Config
    cfg = Config.fromfile(config)
    backbone = cfg.get('model', {}).get('backbone', {})
    if 'init_cfg' not in backbone:
        return False
    init = backbone['init_cfg']
    return not (isinstance(init, dict) and keep_type is not None and
                init.get('type') == keep_type)


def save_best_key(config: str,
                  cfg_options: Sequence[str] = ()) -> Optional[str]:
    """The metric whose best-on-val checkpoint the config's CheckpointHook
    keeps (``default_hooks.checkpoint.save_best``, the first of a list;
    ``'auto'`` as given), None when it keeps none."""
    cfg = _merged_config(config, cfg_options)
    hook = cfg.get('default_hooks', {}).get('checkpoint') or {}
    key = hook.get('save_best')
    if isinstance(key, (list, tuple)):
        key = key[0] if key else None
    return key or None


def job_cfg_options(job: Job,
                    ckpt_prefix: str = 'backbone.',
                    init_type: str = 'VerifiedPretrained',
                    replace_init: bool = True) -> List[str]:
    """``--cfg-options`` items for a job (``key=value`` strings).

    Sets the case fraction, the volume count (``num_cases`` = the job's
    ``num_volumes``, or None so that the fraction decides: a config's own
    ``num_cases`` would otherwise win), their sampling seed, the global seed
    and the backbone initialisation: an ``init_type`` init_cfg (default
    medssl's ``VerifiedPretrained``, which fails loudly on shape mismatches or
    mostly missing keys; mmengine's ``Pretrained`` also works) reading the
    keys under ``ckpt_prefix`` of the SSL checkpoint, or ``init_cfg=None``
    (random init).
    ``replace_init``: the config already sets an init_cfg (see
    :func:`backbone_has_init_cfg`), so ``_delete_=True`` is added.
    The job's ``extra_cfg_options`` come last.
    """
    # The dataset's ``num_cases`` overrides ``case_fraction`` (the ``*_<k>vol``
    # configs set it), so it is pinned to the planned count: the run trains on
    # the volumes its record says, whatever the config fixed.
    num_cases = 'None' if job.num_volumes is None else job.num_volumes
    opts = [
        f'train_dataloader.dataset.case_fraction={job.fraction:g}',
        f'train_dataloader.dataset.num_cases={num_cases}',
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


def _launcher_argv(script: str, launcher: str, gpus: int, python: str,
                   *args: str) -> List[str]:
    root = repo_root()
    if launcher == 'dist':  # dist_train.sh CONFIG GPUS, dist_test.sh
        # CONFIG CHECKPOINT GPUS
        return ['bash', osp.join(root, 'tools', f'dist_{script}.sh'), *args,
                str(gpus)]
    if launcher != 'python':
        raise ValueError(f"launcher must be 'python' or 'dist', got "
                         f'{launcher!r}')
    return [python, osp.join(root, 'tools', f'{script}.py'), *args]


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
    cmd = _launcher_argv('train', launcher, gpus, python, config)
    cmd += ['--work-dir', job.work_dir, '--cfg-options']
    return cmd + job_cfg_options(job, ckpt_prefix, init_type, replace_init)


def test_command(config: str,
                 job: Job,
                 checkpoint: str,
                 launcher: str = 'python',
                 gpus: int = 1,
                 python: str = sys.executable) -> List[str]:
    """argv of the test run (``tools/test.py`` / ``tools/dist_test.sh``)
    writing into ``<work_dir>/test``; the job's ``extra_cfg_options`` are
    passed on (e.g. a data_root)."""
    cmd = _launcher_argv('test', launcher, gpus, python, config, checkpoint)
    cmd += ['--work-dir', osp.join(job.work_dir, 'test')]
    if job.extra_cfg_options:
        cmd += ['--cfg-options'] + list(job.extra_cfg_options)
    return cmd
