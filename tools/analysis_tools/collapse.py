r"""Dimensional-collapse report of pretraining checkpoints.

For each checkpoint: embeddings of a slice set (backbone pooled features,
decorrelated features when the model has a ``decorrelation`` module,
projector output) -> covariance spectrum (Jing et al. 2022), effective rank,
RankMe, normalised std, uniformity (and alignment with ``--alignment``).
Writes ``collapse.json`` and ``collapse.png`` (log-spectra of all
checkpoints, one subplot per embedding type) to ``--out-dir``.

Example::

    python tools/analysis_tools/collapse.py \
        configs/selfsup/medmoco/<config>.py \
        work_dirs/mocov2/epoch_200.pth work_dirs/medmoco/epoch_200.pth \
        --labels mocov2 medmoco --num-samples 1024 --out-dir work_dirs/collapse

A checkpoint given as ``random`` analyses the randomly initialised model,
seeded by ``--seed`` (deterministic).
"""
import argparse
import os.path as osp
from collections import OrderedDict

from mmengine.config import DictAction

from medssl.cli import HelpFormatter, add_device_arg, resolve_device


def parse_args(argv=None):
    p = argparse.ArgumentParser(
        description='Collapse analysis (spectrum, effective rank, RankMe) of '
        'SSL checkpoints', formatter_class=HelpFormatter,
        epilog='example:\n' + __doc__.split('Example::')[1].strip('\n'))
    p.add_argument('config', help='pretraining config the checkpoints used')
    p.add_argument('checkpoints', nargs='+',
                   help='checkpoint paths (or "random")')
    p.add_argument('--labels', nargs='+',
                   help='names of the checkpoints (None: file names)')
    p.add_argument('--data-root', help='override the dataset data_root')
    p.add_argument('--num-samples', type=int, default=512,
                   help='evenly spaced slices to embed (0 = all)')
    p.add_argument('--batch-size', type=int, default=32,
                   help='slices per forward pass')
    p.add_argument('--img-size', type=int, help='resize size of the '
                   "evaluation pipeline (None: the config's crop_size)")
    p.add_argument('--alignment', action='store_true', help='also embed two '
                   'augmented views of the training pipeline and report the '
                   'alignment')
    add_device_arg(p)
    p.add_argument('--out-dir', default='work_dirs/collapse',
                   help='where collapse.json and collapse.png go')
    p.add_argument('--seed', type=int, default=0, help='seeds the random-init '
                   'baseline ("random") and the augmented views: same seed, '
                   'same numbers')
    p.add_argument('--cfg-options', nargs='+', action=DictAction,
                   help='override config keys, key=value')
    args = p.parse_args(argv)
    if args.labels is not None and len(args.labels) != len(args.checkpoints):
        p.error('--labels needs one name per checkpoint')
    return args


def main(argv=None):
    args = parse_args(argv)
    from mmengine.config import Config

    from medssl.analysis.collapse_report import (analyze_checkpoints,
                                                 save_report)
    cfg = Config.fromfile(args.config)
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    names = args.labels or [
        osp.splitext(osp.basename(c))[0] for c in args.checkpoints
    ]
    if len(set(names)) != len(names):
        names = [f'{i}_{n}' for i, n in enumerate(names)]
    ckpts = OrderedDict(zip(names, args.checkpoints))
    report = analyze_checkpoints(cfg,
                                 ckpts,
                                 data_root=args.data_root,
                                 num_samples=args.num_samples or None,
                                 batch_size=args.batch_size,
                                 img_size=args.img_size,
                                 with_alignment=args.alignment,
                                 device=resolve_device(args.device),
                                 seed=args.seed)
    json_path, png_path = save_report(report, args.out_dir)
    print(f'{"checkpoint":<24}{"embedding":<14}{"dim":>6}{"erank":>9}'
          f'{"RankMe":>9}{"std*sqrtD":>10}{"unif":>8}')
    for name, r in report.items():
        for etype, m in r['embeddings'].items():
            print(f'{name:<24}{etype:<14}{m["dim"]:>6}'
                  f'{m["effective_rank"]:>9.2f}{m["rankme"]:>9.2f}'
                  f'{m["normalized_std"] / m["std_reference"]:>10.3f}'
                  f'{m["uniformity"]:>8.3f}')
    print(f'wrote {json_path} and {png_path}')


if __name__ == '__main__':
    main()
