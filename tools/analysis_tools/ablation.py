#!/usr/bin/env python
"""Method ablation in one command: MoCo v2, +local, +decorrelation variants,
full method (and intensity-augmentation levels) x seeds at one budget.

For every (variant, seed): ``tools/train.py`` pretraining ->
``tools/analysis_tools/collapse.py`` on held-out slices -> linear probe
(``tools/train.py`` + ``tools/test.py``); plus the random-init baseline per
seed. Writes ``ablation.md`` / ``ablation.json`` (mean ± sd, 95 % CI, paired
difference to MoCo v2) and ``spectra.png`` to the work dir. Finished runs
are skipped, so re-running continues an interrupted ablation.
"""
import argparse
import os
import os.path as osp
import time

from medssl.cli import HelpFormatter
from medssl.utils.process import (REPO, run_logged, schedule_options,
                                  tool_command)

PROBE = 'configs/benchmarks/mmsegmentation/btcv/' \
    'linear_r18_1xb2-20it_btcv-phantom.py'
# downstream configs of the fine-tuning arm: {pretrained?: config}
FINETUNE = {
    False: 'configs/benchmarks/mmsegmentation/btcv/'
    'fcn_r18-d8_1xb2-20it_btcv-phantom.py',
    True: 'configs/benchmarks/mmsegmentation/btcv/'
    'fcn_r18-d8_1xb2-20it_btcv-phantom_ssl.py',
}
EXAMPLE = """example (CPU, phantoms, ~1 h on 2 cores):
  python tools/analysis_tools/ablation.py --phantoms --seeds 0 1 2 \\
      --work-dir work_dirs/ablation --jobs 2
real data (converted with tools/dataset_converters/*.py):
  python tools/analysis_tools/ablation.py --abdomen-root data/abdomen1k \\
      --btcv-root data/btcv --pretrain-iters 300 --batch-size 32"""


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description=__doc__.split('\n')[0], epilog=EXAMPLE,
        formatter_class=HelpFormatter)
    p.add_argument('--work-dir', default='work_dirs/ablation')
    p.add_argument('--variants', nargs='+',
                   default=['mocov2', 'local', 'decor-fixed',
                            'decor-shuffled', 'decor-loss', 'full'],
                   help='names from medssl.analysis.ablation.VARIANTS')
    p.add_argument('--intensity', default='strong',
                   help='intensity-augmentation level of the variants '
                   '(strong = the configs as shipped, mild, none)')
    p.add_argument('--intensity-ablation', nargs='*', default=['full'],
                   help="variants also run at every other intensity level "
                   "('variant:level' for one level)")
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1, 2])
    p.add_argument('--pretrain-iters', type=int, default=200)
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--probe-iters', type=int, default=300)
    p.add_argument('--abdomen-root', help='converted AbdomenCT-1K slices')
    p.add_argument('--btcv-root', help='converted BTCV slices')
    p.add_argument('--phantoms', action='store_true',
                   help='generate and convert phantoms into the work dir')
    p.add_argument('--phantom-shape', type=int, nargs=3, default=(96, 96, 24))
    p.add_argument('--pool-volumes', type=int, default=120,
                   help='phantom AbdomenCT-1K volumes of the unlabelled '
                   'pretraining pool (--phantoms)')
    p.add_argument('--pretrain-options', nargs='*', default=[],
                   help='extra --cfg-options of every pretraining run')
    p.add_argument('--finetune-volumes', type=int, nargs='*',
                   default=[1, 2, 5],
                   help='labelled training volumes of the fine-tuning arm '
                   '(none: no fine-tuning)')
    p.add_argument('--finetune-iters', type=int, default=300)
    p.add_argument('--finetune-inits', nargs='+', default=['full', 'mocov2'],
                   help='pretraining variants fine-tuned (scratch always); '
                   'the first one gets the diagnosis rows')
    p.add_argument('--recipes', nargs='+', default=['default'],
                   help='transfer recipes of the fine-tuning arm (names of '
                   'medssl.analysis.finetune.RECIPES, joined by +)')
    p.add_argument('--diagnose', nargs='*', default=[],
                   help='recipes also run on 1 labelled volume for the '
                   'first --finetune-inits variant (the diagnosis table)')
    p.add_argument('--diagnose-inits', nargs='*', default=[],
                   help='more pretraining variants fine-tuned on 1 labelled '
                   'volume with the first --recipes (diagnosis rows)')
    p.add_argument('--baselines', nargs='*',
                   default=['scratch=default', 'mocov2=default'],
                   help='init=recipe rows the paired differences refer to')
    p.add_argument('--schedule-points', type=float, nargs='*', default=[],
                   help='also fine-tune the checkpoints of the first '
                   '--finetune-inits variant at these fractions of '
                   'pretraining (e.g. 0.1 0.3)')
    p.add_argument('--finetune-seeds', type=int, nargs='*', default=None,
                   help='fine-tuning seeds (default --seeds); fresh seeds '
                   'here confirm a result chosen on --seeds')
    p.add_argument('--finetune-options', nargs='*', default=[],
                   help='extra --cfg-options of every fine-tuning run')
    p.add_argument('--skip-probe', action='store_true',
                   help='no collapse report and linear probe')
    p.add_argument('--collapse-split', default='val',
                   help='BTCV split whose slices the collapse report embeds')
    p.add_argument('--jobs', type=int, default=1,
                   help='runs in parallel (each single-threaded on CPU)')
    p.add_argument('--dry-run', action='store_true',
                   help='print the commands only')
    return p.parse_args(argv)


def _run(cmd, log, dry, env):
    if dry:
        print(' '.join(cmd))
        return
    run_logged(cmd, log, cwd=REPO, env=env, tail_chars=2500)


# BTCV phantom case ids: 10 train, 2 val, 6 test volumes of the shipped split
BTCV_PHANTOM_IDS = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '21',
                    '22', '35', '36', '37', '38', '39', '40']


def prepare_phantoms(work, shape, env, dry, pool=120, jobs=1):
    """Unlabelled AbdomenCT-1K-like pretraining pool of ``pool`` volumes
    (generated in ``jobs`` parallel chunks) and the BTCV-like labelled
    set, both converted with the README's converters."""
    from concurrent.futures import ThreadPoolExecutor
    raw, data = osp.join(work, 'raw'), osp.join(work, 'data')
    abd, btcv = osp.join(data, 'abdomen1k'), osp.join(data, 'btcv')
    shape = [str(s) for s in shape]
    chunks = [list(range(1 + c, pool + 1, max(1, jobs)))
              for c in range(max(1, min(jobs, pool)))]
    if not osp.exists(osp.join(abd, 'summary.json')):
        def gen(c):
            _run(tool_command(
                'misc/make_phantoms.py', osp.join(raw, 'abd'), '--layout',
                'abdomen1k', '--num-cases', str(len(chunks[c])),
                '--case-ids', *map(str, chunks[c]), '--no-labels',
                '--seed', str(100 + c), '--shape', *shape),
                osp.join(work, 'logs', f'pool_{c}.log'), dry, env)
        with ThreadPoolExecutor(len(chunks)) as ex:
            list(ex.map(gen, range(len(chunks))))
        _run(tool_command('dataset_converters/abdomen1k.py',
                          osp.join(raw, 'abd'), abd, '--nproc',
                          str(max(1, jobs))),
             osp.join(work, 'logs', 'pool_convert.log'), dry, env)
    if not osp.exists(osp.join(btcv, 'summary.json')):
        ids = BTCV_PHANTOM_IDS
        _run(tool_command('misc/make_phantoms.py', osp.join(raw, 'btcv'),
                          '--layout', 'btcv', '--num-cases', str(len(ids)),
                          '--case-ids', *ids, '--seed', '200', '--shape',
                          *shape),
             osp.join(work, 'logs', 'btcv.log'), dry, env)
        _run(tool_command('dataset_converters/btcv.py', osp.join(raw, 'btcv'),
                          btcv, '--nproc', str(max(1, jobs))),
             osp.join(work, 'logs', 'btcv_convert.log'), dry, env)
    return abd, btcv


def main(argv=None):
    args = parse_args(argv)
    from concurrent.futures import ThreadPoolExecutor

    from medssl.analysis.ablation import INTENSITY_LEVELS, variant_config
    from medssl.analysis.data_efficiency import Job, SubprocessRunner
    from medssl.analysis.data_efficiency.running import read_metric
    work = osp.abspath(args.work_dir)
    env = dict(os.environ, OMP_NUM_THREADS='1', MKL_NUM_THREADS='1') \
        if args.jobs > 1 else dict(os.environ)
    if args.phantoms:
        abd, btcv = prepare_phantoms(work, args.phantom_shape, env,
                                     args.dry_run, args.pool_volumes,
                                     args.jobs)
    else:
        if not (args.abdomen_root and args.btcv_root):
            raise SystemExit('give --abdomen-root and --btcv-root, or '
                             '--phantoms')
        abd, btcv = map(osp.abspath, (args.abdomen_root, args.btcv_root))
    split = args.collapse_split
    if not osp.exists(osp.join(btcv, 'splits', f'{split}.txt')) and \
            not args.dry_run:
        raise SystemExit(f'{btcv}/splits/{split}.txt not found '
                         '(--collapse-split)')

    runs = [(v, args.intensity) for v in args.variants]
    for item in args.intensity_ablation:  # 'variant' or 'variant:level'
        v, _, only = item.partition(':')
        runs += [(v, lvl) for lvl in INTENSITY_LEVELS
                 if lvl != args.intensity and only in ('', lvl)]
    os.makedirs(osp.join(work, 'configs'), exist_ok=True)
    configs = {}
    for variant, level in runs:
        name = variant if level == args.intensity else f'{variant}@{level}'
        path = osp.join(work, 'configs', f'{name}.py')
        variant_config(REPO, variant, level).dump(path)
        configs[name] = path

    it = args.pretrain_iters
    sched = schedule_options(it)

    along = args.finetune_inits[0] if args.schedule_points else None

    def pretrain_and_collapse(name, seed):
        wd = osp.join(work, 'pretrain', name, f'seed{seed}')
        ckpt = osp.join(wd, f'iter_{it}.pth')
        extra = []
        if name == along:  # intermediate checkpoints for the schedule rows
            extra = [f'default_hooks.checkpoint.interval={max(1, it // 10)}',
                     'default_hooks.checkpoint.max_keep_ckpts=-1']
        if not osp.exists(ckpt):
            _run(tool_command('train.py', configs[name], '--work-dir', wd,
                       '--cfg-options',
                       f'train_dataloader.dataset.data_root={abd}',
                       f'train_dataloader.batch_size={args.batch_size}',
                       f'randomness.seed={seed}', *sched, *extra,
                       *args.pretrain_options),
                 osp.join(wd, 'run.log'), args.dry_run, env)
        if not args.skip_probe:
            collapse(name, seed, configs[name], ckpt)
        return ckpt

    def collapse(name, seed, config, ckpt):
        out = osp.join(work, 'collapse', name, f'seed{seed}')
        if not osp.exists(osp.join(out, 'collapse.json')):
            _run(tool_command('analysis_tools/collapse.py', config, ckpt, '--labels',
                       name, '--data-root', btcv, '--num-samples', '0',
                       '--seed', str(seed), '--out-dir', out, '--device',
                       'cpu', '--cfg-options',
                       f'train_dataloader.dataset.ann_file=splits/'
                       f'{split}.txt'),
                 osp.join(out, 'run.log'), args.dry_run, env)

    probe = SubprocessRunner(osp.join(REPO, PROBE), env=env)
    data_opts = [f'{loader}.dataset.data_root={btcv}'
                 for loader in ('train_dataloader', 'val_dataloader',
                                'test_dataloader')]
    pit = args.probe_iters
    probe_opts = data_opts + schedule_options(pit) + [
        f'train_cfg.val_interval={pit}']

    def probe_run(name, seed, ckpt):
        wd = osp.join(work, 'probe', name, f'seed{seed}')
        job = Job(name, ckpt, 1.0, seed, wd, list(probe_opts))
        if read_metric(osp.join(wd, 'test')) is None and not args.dry_run:
            probe.test(job, probe.train(job))

    def one(name, seed):
        if name == 'random':
            if not args.skip_probe:
                collapse('random', seed, next(iter(configs.values())),
                         'random')
                probe_run('random', seed, None)
        else:
            ckpt = pretrain_and_collapse(name, seed)
            if not args.skip_probe:
                probe_run(name, seed, ckpt)
        return name, seed

    t0 = time.time()
    tasks = [(n, s) for s in args.seeds for n in ['random', *configs]]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for k, (n, s) in enumerate(pool.map(lambda a: one(*a), tasks)):
            print(f'[{k + 1}/{len(tasks)}] {n} seed {s} done '
                  f'({time.time() - t0:.0f} s)', flush=True)
    ft_records = finetune_arm(args, work, btcv, data_opts, env,
                              pretrain_and_collapse)
    if args.dry_run:
        return
    if not args.skip_probe:
        report(work, ['random', *configs], args, time.time() - t0)
    if ft_records:
        report_finetune(work, ft_records, args, time.time() - t0)


def finetune_jobs(args, pretrained):
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


def finetune_arm(args, work, btcv, data_opts, env, pretrain):
    """Fine-tune scratch and the pretrained variants on a few labelled
    volumes (``tools/train.py`` + ``tools/test.py``); resumable. Returns the
    result records."""
    if not args.finetune_volumes:
        return []
    import json
    from concurrent.futures import ThreadPoolExecutor

    from mmengine.config import Config

    from medssl.analysis.data_efficiency import Job, SubprocessRunner
    from medssl.analysis.data_efficiency.running import read_metric
    from medssl.analysis.finetune import apply_recipe
    it, fit = args.pretrain_iters, args.finetune_iters

    def pretrained(variant, seed, point):
        ckpt = pretrain(variant, seed)
        if point < 1.0:
            ckpt = osp.join(osp.dirname(ckpt),
                            f'iter_{max(1, round(point * 10)) * (it // 10)}'
                            '.pth')
        return ckpt

    runners, init_opts = {}, {}

    def runner(recipe, is_pretrained):
        key = (recipe, is_pretrained)
        if key not in runners:
            cfg = Config.fromfile(osp.join(REPO, FINETUNE[is_pretrained]))
            init_opts[key] = apply_recipe(cfg, recipe, fit, is_pretrained)
            path = osp.join(work, 'configs', 'finetune',
                            f'{recipe}_{"ssl" if is_pretrained else "scratch"}'
                            '.py')
            os.makedirs(osp.dirname(path), exist_ok=True)
            cfg.dump(path)
            runners[key] = SubprocessRunner(path, env=env)
        return runners[key], init_opts[key]

    base_opts = data_opts + schedule_options(fit) + [
        f'train_cfg.val_interval={fit}'] + list(args.finetune_options)

    def run(job_spec):
        init, recipe, k, seed, ckpt = job_spec
        wd = osp.join(work, 'finetune', f'{k}vol', recipe, init,
                      f'seed{seed}')
        result = osp.join(wd, 'result.json')
        if osp.exists(result):
            with open(result) as f:
                return json.load(f)
        rnr, iopts = runner(recipe, ckpt is not None)
        job = Job(init, ckpt, 1.0, seed, wd, base_opts + [
            f'train_dataloader.dataset.num_cases={k}'] + iopts)
        if args.dry_run:
            print(' '.join(rnr.config for _ in [0]), wd)
            return None
        trained = rnr.train(job)
        val = read_metric(wd)  # the validation at the end of training
        test = rnr.test(job, trained)
        rec = dict(init=init, recipe=recipe, volumes=k, seed=seed,
                   val_mDice=val, test_mDice=test, checkpoint=ckpt)
        with open(result, 'w') as f:
            json.dump(rec, f, indent=1)
        return rec

    specs = finetune_jobs(args, pretrained)
    records = []
    t0 = time.time()
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for k, rec in enumerate(pool.map(run, specs)):
            if rec is not None:
                records.append(rec)
                print(f'[finetune {k + 1}/{len(specs)}] {rec["init"]} '
                      f'{rec["recipe"]} {rec["volumes"]} vol seed '
                      f'{rec["seed"]}: test mDice {rec["test_mDice"]:.2f} '
                      f'({time.time() - t0:.0f} s)', flush=True)
    return records


def report_finetune(work, records, args, seconds):
    import json

    from medssl.analysis.finetune import (finetune_table,
                                          render_finetune_markdown)
    baselines = [tuple(b.split('=', 1)) for b in args.baselines]
    rows = finetune_table(records, baselines)
    budget = (f'pretraining: ResNet-18, batch {args.batch_size}, '
              f'{args.pretrain_iters} iterations, seeds {args.seeds}; '
              f'fine-tuning: tiny FCN-R18-D8, {args.finetune_iters} '
              f'iterations, seeds {args.finetune_seeds or args.seeds}')
    md = (f'# Fine-tuning arm\n\nBudget: {budget}. Wall time '
          f'{seconds / 60:.1f} min.\n\nTest mDice (held-out volumes) mean ± '
          'sd over seeds; Δ = paired difference on the same seeds and '
          'labelled volumes, two-sided paired t-test, Holm-corrected over '
          'every comparison of the table.\n\n'
          f'{render_finetune_markdown(rows, [b for b, _ in baselines])}\n')
    with open(osp.join(work, 'finetune.md'), 'w') as f:
        f.write(md)
    with open(osp.join(work, 'finetune.json'), 'w') as f:
        json.dump(dict(budget=budget, records=records, rows=rows), f,
                  indent=1)
    print(md)


def report(work, names, args, seconds):
    import json

    from medssl.analysis.ablation import (plot_mean_spectra, render_markdown,
                                          summarize)
    from medssl.analysis.data_efficiency.running import read_metric
    records, spectra = [], {}
    for name in names:
        for seed in args.seeds:
            with open(osp.join(work, 'collapse', name, f'seed{seed}',
                               'collapse.json')) as f:
                emb = next(iter(json.load(f).values()))['embeddings']
            rec = dict(variant=name, seed=seed,
                       mDice=read_metric(osp.join(work, 'probe', name,
                                                  f'seed{seed}', 'test')))
            for etype, m in emb.items():
                rec[f'{etype}_erank'] = m['effective_rank']
                rec[f'{etype}_rankme'] = m['rankme']
                rec[f'{etype}_norm'] = m.get('mean_norm', float('nan'))
            spectra.setdefault(name, []).append(emb['backbone']['spectrum'])
            records.append(rec)
    summary = summarize(records)
    cols = ['backbone_erank', 'backbone_rankme', 'backbone_norm',
            'projector_erank', 'mDice']
    table = render_markdown(summary, cols)
    budget = (f'ResNet-18, batch {args.batch_size}, 64x64 views, '
              f'{args.pretrain_iters} pretraining iterations, linear probe '
              f'{args.probe_iters} iterations, seeds {args.seeds}, '
              f'intensity level {args.intensity!r}')
    md = (f'# Ablation\n\nBudget: {budget}. Wall time {seconds / 60:.1f} min.'
          f'\n\nmean ± sd [95 % CI] over seeds; the last column is the '
          f'paired mDice difference to MoCo v2 on the same seeds.\n\n'
          f'{table}\n\nSpectra: spectra.png\n')
    with open(osp.join(work, 'ablation.md'), 'w') as f:
        f.write(md)
    with open(osp.join(work, 'ablation.json'), 'w') as f:
        json.dump(dict(budget=budget, records=records, summary=summary), f,
                  indent=1)
    plot_mean_spectra(spectra, osp.join(work, 'spectra.png'))
    print(md)


if __name__ == '__main__':
    main()
