"""Data-efficiency protocol: fine-tune with label fractions x seeds.

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

Outputs in ``--out-dir`` (default: the work dir): ``data_efficiency.csv``
(method, fraction, seed, dice), ``data_efficiency.png`` (Dice vs fraction,
mean +- std over seeds), ``data_efficiency_summary.json`` (per method: mean,
std, annotation-efficiency integral, one-sided Welch t-test vs random init per
fraction). See :mod:`medssl.analysis.data_efficiency` for the definitions.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import sys

from medssl.analysis import data_efficiency as de


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Data-efficiency protocol (label fractions x seeds)')
    p.add_argument('config', nargs='?', help='downstream (mmseg) config')
    p.add_argument('--checkpoints',
                   nargs='*',
                   default=[],
                   help='pretrained SSL checkpoints as name=path; random '
                   'init is always added as "random"')
    p.add_argument('--fractions',
                   nargs='+',
                   type=float,
                   default=[0.01, 0.1, 0.25, 1.0])
    p.add_argument('--seeds', nargs='+', type=int, default=[0, 1, 2])
    p.add_argument('--work-dir', default='work_dirs/data_efficiency')
    p.add_argument('--out-dir',
                   default=None,
                   help='where CSV/PNG/summary go (default: work dir)')
    p.add_argument('--ckpt-prefix',
                   default='backbone.',
                   help='key prefix of the backbone weights inside the '
                   'checkpoints (Pretrained init_cfg prefix); "" for '
                   'converted backbone-only checkpoints')
    p.add_argument('--init-type',
                   default='VerifiedPretrained',
                   help='init_cfg type that loads the checkpoint into the '
                   'backbone (VerifiedPretrained or Pretrained)')
    p.add_argument('--reference',
                   default=None,
                   help='method whose score at the largest fraction is '
                   'score_full_supervised in the AEI (default: each '
                   "method's own)")
    p.add_argument('--no-random',
                   action='store_true',
                   help='do not add the random-init baseline')
    p.add_argument('--print-commands',
                   action='store_true',
                   help='print dist_train.sh/dist_test.sh commands instead '
                   'of running')
    p.add_argument('--gpus',
                   type=int,
                   default=1,
                   help='GPUs per run for --print-commands')
    p.add_argument('--collect',
                   metavar='WORK_DIR',
                   default=None,
                   help='only gather results of finished runs in WORK_DIR')
    p.add_argument('--cfg-options',
                   nargs='*',
                   default=[],
                   help='extra key=value overrides for every run')
    args = p.parse_args(argv)
    if args.collect is None and args.config is None:
        p.error('CONFIG is required unless --collect is given')
    return args


def report(records, out_dir, reference=None, baseline=de.RANDOM_INIT):
    os.makedirs(out_dir, exist_ok=True)
    csv_path = osp.join(out_dir, 'data_efficiency.csv')
    de.write_csv(records, csv_path)
    summary = de.summarize(records, baseline=baseline, reference=reference)
    with open(osp.join(out_dir, 'data_efficiency_summary.json'), 'w') as f:
        json.dump(
            {
                m: {
                    **s, 'ttest': {
                        str(k): v
                        for k, v in s['ttest'].items()
                    }
                }
                for m, s in summary.items()
            },
            f,
            indent=2)
    if summary:
        de.plot_curves(summary, osp.join(out_dir, 'data_efficiency.png'))
    print(f'{"method":<16}{"fraction":>9}{"mean":>9}{"std":>9}{"n":>3}'
          f'{"p(>random)":>12}')
    for method, s in summary.items():
        for f, m, sd, n in zip(s['fractions'], s['mean'], s['std'], s['n']):
            p = s['ttest'].get(f, {}).get('p', float('nan'))
            print(f'{method:<16}{f:>9g}{m:>9.4f}{sd:>9.4f}{n:>3}{p:>12.4g}')
        print(f'{method:<16} AEI = {s["aei"]:.4f} '
              f'(reference score {s["reference_score"]:.4f})')
    print(f'wrote {csv_path}')
    failed = [r for r in records if 'error' in r]
    for r in failed:
        print(
            f'FAILED {r["method"]} r={r["fraction"]} seed={r["seed"]}: '
            f'{r["error"][:300]}',
            file=sys.stderr)
    return summary


def main(argv=None):
    args = parse_args(argv)
    if args.collect is not None:
        records = de.collect_results(args.collect)
        report(records, args.out_dir or args.collect, args.reference)
        return
    ckpts = de.parse_checkpoints(args.checkpoints)
    jobs = de.make_jobs(ckpts,
                        args.fractions,
                        args.seeds,
                        args.work_dir,
                        add_random=not args.no_random)
    for job in jobs:
        job.extra_cfg_options = list(args.cfg_options)
    if args.print_commands:
        replace_init = de.backbone_has_init_cfg(args.config)
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
            # the fine-tuned checkpoint is only known after training:
            # mmengine names it in <work_dir>/last_checkpoint
            sentinel = '__MEDSSL_LAST_CKPT__'
            last = shlex.quote(osp.join(job.work_dir, 'last_checkpoint'))
            print(
                shlex.join(
                    de.test_command(args.config,
                                    job,
                                    sentinel,
                                    launcher='dist',
                                    gpus=args.gpus)).replace(
                                        sentinel, f'"$(cat {last})"'))
        print(f'# afterwards: python {sys.argv[0]} --collect '
              f'{args.work_dir}')
        return
    runner = de.SubprocessRunner(args.config,
                                 ckpt_prefix=args.ckpt_prefix,
                                 init_type=args.init_type)
    records = de.run_jobs(jobs, runner.train, runner.test)
    report(records, args.out_dir or args.work_dir, args.reference)


if __name__ == '__main__':
    main()
