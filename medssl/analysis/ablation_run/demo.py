"""The demo (``tools/demo.py``): the ablation with small settings (MoCo v2
and the full method, one seed, a few phantoms), plus its per-organ report.
"""
import argparse
import json
import os.path as osp
from collections import OrderedDict
from typing import Dict, List

from .paths import collapse_dir, probe_dir
from .report import write_outputs

__all__ = ['DEMO_VARIANTS', 'demo_argv', 'dice_table', 'write_demo_report']

# ablation variant -> the demo's label
DEMO_VARIANTS = OrderedDict(mocov2='mocov2', full='medmoco')
# BTCV phantoms by the shipped split: 5 training volumes, 1 validation
# volume (the probe's end-of-training val), 2 held-out test volumes
DEMO_BTCV_VOLUMES = (5, 1, 2)
DEMO_BATCH_SIZE = 4  # the tiny phantom configs' batch


def demo_argv(args: argparse.Namespace) -> List[str]:
    """The ablation's command line for the demo's options."""
    return [
        '--work-dir', args.work_dir, '--phantoms',
        '--phantom-shape', *map(str, args.shape),
        '--pool-volumes', str(args.abdomen_cases),
        '--btcv-volumes', *map(str, DEMO_BTCV_VOLUMES),
        '--variants', *DEMO_VARIANTS, '--intensity-ablation',
        '--seeds', str(args.seed),
        '--pretrain-iters', str(args.pretrain_iters),
        '--batch-size', str(DEMO_BATCH_SIZE),
        '--probe-iters', str(args.probe_iters),
        # embed the 5 training volumes' slices: the 1 val volume's slices
        # are too few samples for an effective rank
        '--collapse-split', 'train',
        '--finetune-volumes', '--jobs', str(args.jobs)]


def dice_table(results: Dict[str, dict]) -> str:
    """Markdown table: organs x methods (3D Dice in %)."""
    methods = list(results)
    organs = [k[len('Dice.'):] for k in results[methods[0]]
              if k.startswith('Dice.')]
    lines = ['| organ | ' + ' | '.join(methods) + ' |',
             '|---' * (len(methods) + 1) + '|']
    for organ in organs:
        cells = [results[m].get(f'Dice.{organ}') for m in methods]
        lines.append(f'| {organ} | ' + ' | '.join(
            '—' if c is None or c != c else f'{c:.1f}' for c in cells) + ' |')
    lines.append('| **mDice** | ' + ' | '.join(
        f'**{results[m]["mDice"]:.1f}**' for m in methods) + ' |')
    if all('mHD95' in results[m] for m in methods):
        lines.append('| **mHD95 (mm)** | ' + ' | '.join(
            f'**{results[m]["mHD95"]:.1f}**' for m in methods) + ' |')
    lines.append('| missed / false-positive organ-cases | ' + ' | '.join(
        f'{results[m].get("missed_organs", "?")} / '
        f'{results[m].get("false_positive_organs", "?")}'
        for m in methods) + ' |')
    return '\n'.join(lines)


def rank_table(collapse: Dict[str, dict]) -> str:
    """Markdown table: checkpoint x embedding (effective rank); '—' where a
    model has no such embedding (MoCo v2 has no decorrelated output)."""
    etypes = list(OrderedDict.fromkeys(
        e for r in collapse.values() for e in r['embeddings']))
    lines = ['| checkpoint | ' + ' | '.join(etypes) + ' |',
             '|---' * (len(etypes) + 1) + '|']
    for name, r in collapse.items():
        emb = r['embeddings']
        lines.append(f'| {name} | ' + ' | '.join(
            f'{emb[e]["effective_rank"]:.1f}' if e in emb else '—'
            for e in etypes) + ' |')
    return '\n'.join(lines)


def _read_outputs(work: str, seed: int):
    """Per label: the probe's test metrics and the collapse report."""
    dice, collapse = OrderedDict(), OrderedDict()
    for name, label in [('random', 'random'), *DEMO_VARIANTS.items()]:
        # tools/test.py writes the VolumeDiceMetric JSON into its work dir
        with open(osp.join(probe_dir(work, name, seed), 'test',
                           'volume_dice.json')) as f:
            dice[label] = json.load(f)['metrics']
        with open(osp.join(collapse_dir(work, name, seed),
                           'collapse.json')) as f:
            collapse[label] = next(iter(json.load(f).values()))
    return dice, collapse


def write_demo_report(work: str, seed: int) -> str:
    """``demo_results.md`` / ``.json`` under ``work``; returns the text."""
    dice, collapse = _read_outputs(work, seed)
    report = (f'# medssl demo\n\n## Linear probe (affine-free BN + 1x1 '
              f'conv on the frozen backbone), 3D Dice (%) and HD95 on the '
              f'held-out test volumes\n\n{dice_table(dice)}\n\n'
              f'## Effective rank\n\n{rank_table(collapse)}\n\nSpectra: '
              f'{osp.join(work, "spectra.png")}\n')
    write_outputs(work, 'demo_results', report,
                  dict(dice=dice, collapse=collapse))
    return report
