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
from medssl.utils.process import (run_logged, schedule_options,
                                  tool_command)

REPO = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PROBE = 'configs/benchmarks/mmsegmentation/btcv/' \
    'linear_r18_1xb2-20it_btcv-phantom.py'
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
    p.add_argument('--collapse-split', default='test',
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


def prepare_phantoms(work, shape, env, dry):
    raw, data = osp.join(work, 'raw'), osp.join(work, 'data')
    abd, btcv = osp.join(data, 'abdomen1k'), osp.join(data, 'btcv')
    shape = [str(s) for s in shape]
    ids = ['1', '2', '3', '4', '5', '6', '7', '8', '9', '10', '21', '22',
           '35', '36', '37', '38', '39', '40']
    steps = [
        (osp.join(abd, 'summary.json'), [
            tool_command('misc/make_phantoms.py', osp.join(raw, 'abd'), '--layout',
                  'abdomen1k', '--num-cases', '12', '--seed', '100',
                  '--shape', *shape),
            tool_command('dataset_converters/abdomen1k.py', osp.join(raw, 'abd'),
                  abd)]),
        (osp.join(btcv, 'summary.json'), [
            tool_command('misc/make_phantoms.py', osp.join(raw, 'btcv'), '--layout',
                  'btcv', '--num-cases', str(len(ids)), '--case-ids', *ids,
                  '--seed', '200', '--shape', *shape),
            tool_command('dataset_converters/btcv.py', osp.join(raw, 'btcv'),
                  btcv)]),
    ]
    for done, cmds in steps:
        if not osp.exists(done):
            for i, cmd in enumerate(cmds):
                _run(cmd, osp.join(work, 'logs', f'data_{i}.log'), dry, env)
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
                                     args.dry_run)
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

    def pretrain_and_collapse(name, seed):
        wd = osp.join(work, 'pretrain', name, f'seed{seed}')
        ckpt = osp.join(wd, f'iter_{it}.pth')
        if not osp.exists(ckpt):
            _run(tool_command('train.py', configs[name], '--work-dir', wd,
                       '--cfg-options',
                       f'train_dataloader.dataset.data_root={abd}',
                       f'train_dataloader.batch_size={args.batch_size}',
                       f'randomness.seed={seed}', *sched),
                 osp.join(wd, 'run.log'), args.dry_run, env)
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
            collapse('random', seed, next(iter(configs.values())), 'random')
            probe_run('random', seed, None)
        else:
            probe_run(name, seed, pretrain_and_collapse(name, seed))
        return name, seed

    t0 = time.time()
    tasks = [(n, s) for s in args.seeds for n in ['random', *configs]]
    with ThreadPoolExecutor(max(1, args.jobs)) as pool:
        for k, (n, s) in enumerate(pool.map(lambda a: one(*a), tasks)):
            print(f'[{k + 1}/{len(tasks)}] {n} seed {s} done '
                  f'({time.time() - t0:.0f} s)', flush=True)
    if args.dry_run:
        return
    report(work, ['random', *configs], args, time.time() - t0)


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
            spectra.setdefault(name, []).append(emb['backbone']['spectrum'])
            records.append(rec)
    summary = summarize(records)
    cols = ['backbone_erank', 'backbone_rankme', 'projector_erank', 'mDice']
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
