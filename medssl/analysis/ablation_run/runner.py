"""The ablation's pretraining, collapse report and linear probe per
(variant, seed), and :func:`run_ablation`, which runs every stage."""
import argparse
import os
import os.path as osp
from typing import Dict, List, Tuple

from medssl.utils.process import REPO, schedule_options, tool_command
from .paths import PROBE, collapse_dir, pretrain_dir, probe_dir
from .phantoms import convert_phantoms, generate_phantoms
from .stages import Progress, run_parallel, run_tool

__all__ = ['AblationRun', 'stage_titles', 'run_ablation']


class AblationRun:
    """The state every stage reads: options, work dir, data roots, the
    subprocess environment and the written variant configs."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.work = osp.abspath(args.work_dir)
        self.dry = args.dry_run
        # parallel runs are single-threaded each (no oversubscription)
        self.env = dict(os.environ, OMP_NUM_THREADS='1',
                        MKL_NUM_THREADS='1') if args.jobs > 1 \
            else dict(os.environ)
        self.abd = self.btcv = ''
        self.configs: Dict[str, str] = {}
        self.probe_runner = None

    # -- data and configs ---------------------------------------------------
    def use_roots(self) -> None:
        """The converted data given on the command line."""
        a = self.args
        if not (a.abdomen_root and a.btcv_root):
            raise SystemExit('give --abdomen-root and --btcv-root, or '
                             '--phantoms')
        self.abd, self.btcv = map(osp.abspath, (a.abdomen_root, a.btcv_root))

    def check_collapse_split(self) -> None:
        split = self.args.collapse_split
        if not osp.exists(osp.join(self.btcv, 'splits', f'{split}.txt')) \
                and not self.dry:
            raise SystemExit(f'{self.btcv}/splits/{split}.txt not found '
                             '(--collapse-split)')

    def runs(self) -> List[Tuple[str, str]]:
        """(variant, intensity level) of every pretraining config."""
        from medssl.analysis.ablation import INTENSITY_LEVELS
        a = self.args
        runs = [(v, a.intensity) for v in a.variants]
        for item in a.intensity_ablation:  # 'variant' or 'variant:level'
            v, _, only = item.partition(':')
            runs += [(v, lvl) for lvl in INTENSITY_LEVELS
                     if lvl != a.intensity and only in ('', lvl)]
        return runs

    def write_configs(self) -> None:
        """``<work>/configs/<name>.py`` per run (re-runnable by hand)."""
        from medssl.analysis.ablation import variant_config
        os.makedirs(osp.join(self.work, 'configs'), exist_ok=True)
        for variant, level in self.runs():
            name = variant if level == self.args.intensity \
                else f'{variant}@{level}'
            path = osp.join(self.work, 'configs', f'{name}.py')
            variant_config(REPO, variant, level).dump(path)
            self.configs[name] = path

    # -- one run ------------------------------------------------------------
    def checkpoint(self, name: str, seed: int, point: float = 1.0) -> str:
        """Pretraining checkpoint at fraction ``point`` of the schedule."""
        it = self.args.pretrain_iters
        step = it if point >= 1.0 else max(1, round(point * 10)) * (it // 10)
        return osp.join(pretrain_dir(self.work, name, seed),
                        f'iter_{step}.pth')

    def pretrain(self, task: Tuple[str, int]) -> str:
        name, seed = task
        a = self.args
        wd, ckpt = pretrain_dir(self.work, name, seed), self.checkpoint(*task)
        extra = []
        if a.schedule_points and name == a.finetune_inits[0]:
            # intermediate checkpoints for the schedule rows
            extra = ['default_hooks.checkpoint.interval='
                     f'{max(1, a.pretrain_iters // 10)}',
                     'default_hooks.checkpoint.max_keep_ckpts=-1']
        if not osp.exists(ckpt):
            run_tool(tool_command(
                'train.py', self.configs[name], '--work-dir', wd,
                '--cfg-options', f'train_dataloader.dataset.data_root={self.abd}',
                f'train_dataloader.batch_size={a.batch_size}',
                f'randomness.seed={seed}', *schedule_options(a.pretrain_iters),
                *extra, *a.pretrain_options),
                osp.join(wd, 'run.log'), self.dry, self.env)
        return ckpt

    def collapse(self, task: Tuple[str, int]) -> None:
        name, seed = task
        out = collapse_dir(self.work, name, seed)
        if osp.exists(osp.join(out, 'collapse.json')):
            return
        random = name == 'random'  # embedded with the first config
        config = next(iter(self.configs.values())) if random \
            else self.configs[name]
        ckpt = 'random' if random else self.checkpoint(name, seed)
        run_tool(tool_command(
            'analysis_tools/collapse.py', config, ckpt, '--labels', name,
            '--data-root', self.btcv, '--num-samples', '0', '--seed',
            str(seed), '--out-dir', out, '--device', 'cpu', '--cfg-options',
            'train_dataloader.dataset.ann_file=splits/'
            f'{self.args.collapse_split}.txt'),
            osp.join(out, 'run.log'), self.dry, self.env)

    def data_options(self) -> List[str]:
        return [f'{loader}.dataset.data_root={self.btcv}'
                for loader in ('train_dataloader', 'val_dataloader',
                               'test_dataloader')]

    def probe(self, task: Tuple[str, int]) -> None:
        from medssl.analysis.data_efficiency import Job
        from medssl.analysis.data_efficiency.running import read_metric
        name, seed = task
        wd, pit = probe_dir(self.work, name, seed), self.args.probe_iters
        ckpt = None if name == 'random' else self.checkpoint(name, seed)
        job = Job(name, ckpt, 1.0, seed, wd, self.data_options() +
                  schedule_options(pit) + [f'train_cfg.val_interval={pit}'])
        if read_metric(osp.join(wd, 'test')) is None and not self.dry:
            self.probe_runner.test(job, self.probe_runner.train(job))

    def tasks(self, with_random: bool) -> List[Tuple[str, int]]:
        names = ['random', *self.configs] if with_random else \
            list(self.configs)
        return [(n, s) for s in self.args.seeds for n in names]


def stage_titles(args: argparse.Namespace) -> List[str]:
    """The stages this run goes through, in order."""
    titles = ['phantoms (NIfTI)', 'convert volumes to HU slices'] \
        if args.phantoms else []
    titles.append(f'pretraining ({args.pretrain_iters} iterations each)')
    if not args.skip_probe:
        titles += ['collapse report (spectra, effective rank, RankMe)',
                   f'linear probe ({args.probe_iters} iterations each) and '
                   '3D Dice on the held-out test volumes']
    if args.finetune_volumes:
        titles.append('fine-tuning arm')
    return titles + ['reports']


def _done(task: Tuple[str, int], _result) -> str:
    return f'{task[0]} seed {task[1]} done'


def prepare_data(run: AblationRun, progress: Progress) -> None:
    a = run.args
    if a.phantoms:
        progress.begin(progress.titles[0])
        generate_phantoms(run.work, a.phantom_shape, run.env, run.dry,
                          a.pool_volumes, a.jobs, a.btcv_volumes)
        progress.begin(progress.titles[1])
        run.abd, run.btcv = convert_phantoms(run.work, run.env, run.dry,
                                             a.jobs)
    else:
        run.use_roots()
    run.check_collapse_split()


def run_ablation(args: argparse.Namespace) -> AblationRun:
    """Every stage of the ablation; returns the finished run."""
    from medssl.analysis.data_efficiency import SubprocessRunner
    from .finetune_arm import run_finetune_arm
    from .report import report, report_finetune
    run = AblationRun(args)
    progress = Progress(stage_titles(args))
    titles = iter(progress.titles[2 if args.phantoms else 0:])
    prepare_data(run, progress)
    run.write_configs()
    run.probe_runner = SubprocessRunner(osp.join(REPO, PROBE), env=run.env)
    progress.begin(next(titles))
    run_parallel(run.pretrain, run.tasks(False), args.jobs, _done)
    if not args.skip_probe:
        progress.begin(next(titles))
        run_parallel(run.collapse, run.tasks(True), args.jobs, _done)
        progress.begin(next(titles))
        run_parallel(run.probe, run.tasks(True), args.jobs, _done)
    records = []
    if args.finetune_volumes:
        progress.begin(next(titles))
        records = run_finetune_arm(run)
    progress.begin(next(titles))
    if not args.dry_run:
        if not args.skip_probe:
            report(run, ['random', *run.configs], progress.elapsed())
        if records:
            report_finetune(run, records, progress.elapsed())
    progress.end()
    return run
