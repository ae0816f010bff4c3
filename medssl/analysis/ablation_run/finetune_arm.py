"""The ablation's fine-tuning arm: scratch and pretrained variants
fine-tuned on a few labelled volumes (``tools/train.py`` +
``tools/test.py``), resumable."""
import json
import os
import os.path as osp
from functools import partial
from typing import Callable, Dict, List, Optional, Tuple

from medssl.utils.atomic import atomic_write_bytes
from medssl.utils.process import REPO, schedule_options
from .paths import FINETUNE
from .stages import run_parallel

__all__ = ['finetune_jobs', 'run_finetune_arm']

# (init, recipe, labelled volumes, seed, checkpoint or None)
Spec = Tuple[str, str, int, int, Optional[str]]


def finetune_jobs(args, pretrained: Callable[[str, int, float], str]
                  ) -> List[Spec]:
    """(init, recipe, volumes, seed, checkpoint) of the fine-tuning arm.

    ``pretrained(variant, seed, point)`` gives a pretraining checkpoint
    (``point``: fraction of the pretraining schedule)."""
    from medssl.analysis.finetune import is_pretrained_only
    seeds = args.seeds if args.finetune_seeds is None else args.finetune_seeds
    pre_seeds = {s: args.seeds[i % len(args.seeds)]
                 for i, s in enumerate(seeds)}
    jobs = []
    for k in args.finetune_volumes:
        for s in seeds:
            for recipe in args.recipes:
                if not is_pretrained_only(recipe):
                    jobs.append(('scratch', recipe, k, s, None))
                for v in args.finetune_inits:
                    jobs.append((v, recipe, k, s, pretrained(v, pre_seeds[s],
                                                             1.0)))
    first = args.finetune_inits[0]
    for s in seeds:
        for recipe in args.diagnose:
            if not is_pretrained_only(recipe):
                jobs.append(('scratch', recipe, 1, s, None))
            jobs.append((first, recipe, 1, s, pretrained(first, pre_seeds[s],
                                                         1.0)))
        for v in args.diagnose_inits:
            jobs.append((v, args.recipes[0], 1, s,
                         pretrained(v, pre_seeds[s], 1.0)))
        for point in args.schedule_points:
            jobs.append((f'{first}@{point:g}', args.recipes[0], 1, s,
                         pretrained(first, pre_seeds[s], point)))
    return list(dict.fromkeys(jobs))  # a job asked twice runs once


def build_runners(run, keys) -> Dict[Tuple[str, bool], tuple]:
    """(recipe, pretrained?) -> (SubprocessRunner of the recipe's config
    written to ``<work>/configs/finetune/``, its init cfg-options)."""
    from mmengine.config import Config

    from medssl.analysis.data_efficiency import SubprocessRunner
    from medssl.analysis.finetune import apply_recipe
    out = {}
    for recipe, is_pretrained in keys:
        cfg = Config.fromfile(osp.join(REPO, FINETUNE[is_pretrained]))
        opts = apply_recipe(cfg, recipe, run.args.finetune_iters,
                            is_pretrained)
        path = osp.join(run.work, 'configs', 'finetune',
                        f'{recipe}_{"ssl" if is_pretrained else "scratch"}.py')
        os.makedirs(osp.dirname(path), exist_ok=True)
        cfg.dump(path)
        out[(recipe, is_pretrained)] = (SubprocessRunner(path, env=run.env),
                                        opts)
    return out


def finetune_one(spec: Spec, run, runners: dict,
                 base_opts: List[str]) -> Optional[dict]:
    """Train + test one spec (or read its ``result.json``)."""
    from medssl.analysis.data_efficiency import Job
    from medssl.analysis.data_efficiency.running import read_metric
    init, recipe, k, seed, ckpt = spec
    wd = osp.join(run.work, 'finetune', f'{k}vol', recipe, init,
                  f'seed{seed}')
    result = osp.join(wd, 'result.json')
    if osp.exists(result):
        with open(result) as f:
            return json.load(f)
    runner, init_opts = runners[(recipe, ckpt is not None)]
    job = Job(init, ckpt, 1.0, seed, wd, base_opts + [
        f'train_dataloader.dataset.num_cases={k}'] + init_opts)
    if run.dry:
        print(runner.config, wd)
        return None
    trained = runner.train(job)
    val = read_metric(wd)  # the validation at the end of training
    test = runner.test(job, trained)
    rec = dict(init=init, recipe=recipe, volumes=k, seed=seed,
               val_mDice=val, test_mDice=test, checkpoint=ckpt)
    # all or nothing: the file marks the run done for a rerun
    atomic_write_bytes(result, json.dumps(rec, indent=1).encode(),
                       durable=False)
    return rec


def _label(spec: Spec, rec: Optional[dict]) -> Optional[str]:
    if rec is None:
        return None
    return (f'{rec["init"]} {rec["recipe"]} {rec["volumes"]} vol seed '
            f'{rec["seed"]}: test mDice {rec["test_mDice"]:.2f}')


def run_finetune_arm(run) -> List[dict]:
    """Every fine-tuning job of ``run`` (an ``AblationRun``); returns the
    result records."""
    fit = run.args.finetune_iters
    specs = finetune_jobs(run.args, run.checkpoint)
    runners = build_runners(
        run, dict.fromkeys((s[1], s[4] is not None) for s in specs))
    base_opts = run.data_options() + schedule_options(fit) + [
        f'train_cfg.val_interval={fit}'] + list(run.args.finetune_options)
    records = run_parallel(
        partial(finetune_one, run=run, runners=runners, base_opts=base_opts),
        specs, run.args.jobs, _label)
    return [r for r in records if r is not None]
