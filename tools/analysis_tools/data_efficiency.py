r"""Data-efficiency protocol: fine-tune with label fractions x seeds.

Examples::

    # run everything sequentially (train + test per run), then summarise
    python tools/analysis_tools/data_efficiency.py \
        configs/benchmarks/mmsegmentation/btcv/<config>.py \
        --checkpoints medmoco=work_dirs/medmoco/epoch_200.pth \
                      mocov2=work_dirs/mocov2/epoch_200.pth \
        --fractions 0.01 0.1 0.25 1.0 --seeds 0 1 2 \
        --work-dir work_dirs/data_efficiency

    # only print the cluster commands (tools/dist_train.sh / dist_test.sh)
    python tools/analysis_tools/data_efficiency.py CONFIG \
        --checkpoints medmoco=... --print-commands --gpus 4

    # gather finished runs, write CSV + PNG + summary JSON
    python tools/analysis_tools/data_efficiency.py --collect \
        work_dirs/data_efficiency

The x-axis is the **true** label fraction: a nominal ``--fractions r``
trains on ``max(1, round(r * N))`` of the N training volumes (N read from the
config's training split, or ``--train-volumes``); fractions selecting the
same count run once. ``--gpus G > 1`` runs (and prints) the dist launchers.

Outputs in ``--out-dir`` (default: the work dir): ``data_efficiency.csv``
(method, fraction = volumes / N, num_volumes, total_volumes, seed, dice,
tested),
``data_efficiency.png`` (Dice vs true fraction, mean and 95 % CI band over
seeds), ``data_efficiency_summary.json`` (per method and fraction: mean, sd,
95 % t interval, n, paired comparison with random init over matching seeds,
one-sided Welch test; the annotation-efficiency integral, normalised by
scratch's full-data score unless ``--reference`` says otherwise). With
``save_best`` in the config the checkpoint chosen on val is tested, else the
last one (CSV column ``tested``). See
:mod:`medssl.analysis.data_efficiency` and :mod:`medssl.analysis.stats`.
"""
import argparse
import os
import os.path as osp
import shlex
import sys

from medssl.cli import HelpFormatter


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Data-efficiency protocol (label fractions x seeds)',
        formatter_class=HelpFormatter,
        epilog='examples:\n' + __doc__.split('Examples::')[1].split(
            '\nThe x-axis')[0].strip('\n'))
    p.add_argument('config', nargs='?', help='downstream (mmseg) config')
    p.add_argument('--checkpoints', nargs='*', default=[], help='pretrained '
                   'SSL checkpoints as name=path; random init is always '
                   'added as "random"')
    p.add_argument('--fractions', nargs='+', type=float,
                   default=[0.01, 0.1, 0.25, 1.0], help='label fractions of '
                   'the training volumes (each becomes a whole number of '
                   'volumes, at least one)')
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2],
                   help='seeds: one run per method x fraction x seed')
    p.add_argument('--work-dir', default='work_dirs/data_efficiency',
                   help='one folder per run under it')
    p.add_argument('--out-dir',
                   help='where CSV/PNG/summary go (default: work dir)')
    p.add_argument('--ckpt-prefix', default='backbone.', help='key prefix '
                   'of the backbone weights inside the checkpoints '
                   '(Pretrained init_cfg prefix); "" for converted '
                   'backbone-only checkpoints')
    p.add_argument('--init-type', default='VerifiedPretrained',
                   help='init_cfg type that loads the checkpoint into the '
                   'backbone (VerifiedPretrained or Pretrained)')
    p.add_argument('--reference', help='method whose score at the largest '
                   'fraction is score_full_supervised in the AEI of every '
                   'method; "own": each method its own (default: random '
                   'init, i.e. scratch, or own without random-init runs)')
    p.add_argument('--no-random', action='store_true',
                   help='do not add the random-init baseline')
    p.add_argument('--print-commands', action='store_true', help='print '
                   'dist_train.sh/dist_test.sh commands instead of running')
    p.add_argument('--gpus', type=int, default=1, help='GPUs per run: > 1 '
                   'runs (and prints) tools/dist_train.sh / dist_test.sh')
    p.add_argument('--train-volumes', type=int, help='number of training '
                   "volumes N (default: counted in the config's training "
                   'split)')
    p.add_argument('--collect', metavar='WORK_DIR',
                   help='only gather results of finished runs in WORK_DIR')
    p.add_argument('--cfg-options', nargs='*', default=[],
                   help='extra key=value overrides for every run')
    args = p.parse_args(argv)
    if args.collect is None and args.config is None:
        p.error('CONFIG is required unless --collect is given')
    return args


def report(records, out_dir, reference=None, baseline='random'):
    from medssl.analysis import data_efficiency as de
    os.makedirs(out_dir, exist_ok=True)
    csv_path = osp.join(out_dir, 'data_efficiency.csv')
    ok = [r for r in records if r.get('fraction') is not None]
    de.write_csv(ok, csv_path)
    summary = de.summarize(ok, baseline=baseline, reference=reference)
    de.write_summary(summary,
                     osp.join(out_dir, 'data_efficiency_summary.json'))
    if summary:
        de.plot_curves(summary, osp.join(out_dir, 'data_efficiency.png'))
    print(de.format_summary(summary, baseline))
    print(f'wrote {csv_path}')
    failed = [r for r in records if 'error' in r]
    for r in failed:
        print(
            f'FAILED {r["method"]} r={r["fraction"]} seed={r["seed"]}: '
            f'{r["error"][:300]}',
            file=sys.stderr)
    return summary


def _tested_checkpoint(work_dir, save_best):
    """Shell expression of the checkpoint a printed test command tests; it
    is only known after training: the newest best-on-val one with
    ``save_best``, else the one mmengine names in ``last_checkpoint``."""
    from medssl.analysis.data_efficiency import best_checkpoint_glob
    if save_best:
        best = best_checkpoint_glob(save_best)
        return f'"$(ls -t {shlex.quote(work_dir)}/{best} | head -n 1)"'
    return f'"$(cat {shlex.quote(osp.join(work_dir, "last_checkpoint"))})"'


def main(argv=None):
    args = parse_args(argv)
    from medssl.analysis import data_efficiency as de
    if args.collect is not None:
        records = de.collect_results(args.collect)
        report(records, args.out_dir or args.collect, args.reference)
        return
    ckpts = de.parse_checkpoints(args.checkpoints)
    total = args.train_volumes or len(
        de.train_split_cases(args.config, args.cfg_options))
    jobs = de.make_jobs(ckpts,
                        args.fractions,
                        args.seeds,
                        args.work_dir,
                        add_random=not args.no_random,
                        total_volumes=total)
    print(f'{total} training volumes; runs: ' + ', '.join(
        sorted({f'{j.num_volumes} vol (r={j.fraction:g})' for j in jobs})))
    for job in jobs:
        job.extra_cfg_options = list(args.cfg_options)
    if args.print_commands:
        replace_init = de.backbone_has_init_cfg(args.config)
        best = de.save_best_key(args.config, args.cfg_options)
        for job in jobs:
            print(
                shlex.join(
                    de.train_command(args.config,
                                     job,
                                     launcher='dist',
                                     gpus=args.gpus,
                                     ckpt_prefix=args.ckpt_prefix,
                                     init_type=args.init_type,
                                     replace_init=replace_init
                                     and job.checkpoint is not None)))
            sentinel = '__MEDSSL_CKPT__'
            print(
                shlex.join(
                    de.test_command(args.config,
                                    job,
                                    sentinel,
                                    launcher='dist',
                                    gpus=args.gpus)).replace(
                                        sentinel,
                                        _tested_checkpoint(job.work_dir,
                                                           best)))
        print(f'# afterwards: python {sys.argv[0]} --collect '
              f'{args.work_dir}')
        return
    runner = de.SubprocessRunner(args.config,
                                 ckpt_prefix=args.ckpt_prefix,
                                 init_type=args.init_type,
                                 gpus=args.gpus)
    records = de.run_jobs(jobs, runner.train, runner.test)
    report(records, args.out_dir or args.work_dir, args.reference)


if __name__ == '__main__':
    main()
