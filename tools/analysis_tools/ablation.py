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
from medssl.analysis.ablation_run import build_parser, run_ablation

EXAMPLE = """example (CPU, phantoms, ~1 h on 2 cores):
  python tools/analysis_tools/ablation.py --phantoms --seeds 0 1 2 \\
      --work-dir work_dirs/ablation --jobs 2
real data (converted with tools/dataset_converters/*.py):
  python tools/analysis_tools/ablation.py --abdomen-root data/abdomen1k \\
      --btcv-root data/btcv --pretrain-iters 300 --batch-size 32"""


def parse_args(argv=None):
    return build_parser(__doc__.split('\n')[0], EXAMPLE).parse_args(argv)


def main(argv=None):
    run_ablation(parse_args(argv))


if __name__ == '__main__':
    main()
