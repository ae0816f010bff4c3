"""The ablation's command line (the tool and the demo preset share it)."""
import argparse

from medssl.cli import HelpFormatter

__all__ = ['build_parser']


def build_parser(description: str, epilog: str) -> argparse.ArgumentParser:
    """Every option of ``tools/analysis_tools/ablation.py``."""
    p = argparse.ArgumentParser(description=description, epilog=epilog,
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
    p.add_argument('--btcv-volumes', type=int, nargs=3, default=(10, 2, 6),
                   metavar=('TRAIN', 'VAL', 'TEST'),
                   help='BTCV phantom volumes per split (--phantoms)')
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
    return p
