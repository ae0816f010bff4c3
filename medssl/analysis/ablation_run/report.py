"""The ablation's reports: the pretraining table with spectra, and the
fine-tuning arm's table."""
import json
import os.path as osp
from typing import List

from medssl.utils.atomic import atomic_write_bytes
from .paths import collapse_dir, probe_dir

__all__ = ['report', 'report_finetune']


def write_outputs(work: str, stem: str, md: str, payload: dict) -> None:
    """``<work>/<stem>.md`` (the table) and ``<stem>.json`` (its data),
    each written all or nothing."""
    atomic_write_bytes(osp.join(work, f'{stem}.md'), md.encode(),
                       durable=False)
    atomic_write_bytes(osp.join(work, f'{stem}.json'),
                       json.dumps(payload, indent=1).encode(), durable=False)


def _write_report(run, stem: str, title: str, budget: str, seconds: float,
                  body: str, payload: dict) -> None:
    """``# title``, the budget line and ``body`` as ``<stem>.md``, with
    ``payload`` (+ the budget) as ``<stem>.json``; printed too."""
    md = (f'# {title}\n\nBudget: {budget}. Wall time {seconds / 60:.1f} '
          f'min.\n\n{body}')
    write_outputs(run.work, stem, md, dict(budget=budget, **payload))
    print(md)


def report_finetune(run, records: List[dict], seconds: float) -> None:
    """``finetune.md`` / ``finetune.json``: the fine-tuning table."""
    args = run.args
    from medssl.analysis.finetune import (finetune_table,
                                          render_finetune_markdown)
    baselines = [tuple(b.split('=', 1)) for b in args.baselines]
    rows = finetune_table(records, baselines)
    budget = (f'pretraining: ResNet-18, batch {args.batch_size}, '
              f'{args.pretrain_iters} iterations, seeds {args.seeds}; '
              f'fine-tuning: tiny FCN-R18-D8, {args.finetune_iters} '
              f'iterations, seeds {args.finetune_seeds or args.seeds}')
    _write_report(
        run, 'finetune', 'Fine-tuning arm', budget, seconds,
        'Test mDice (held-out volumes) mean ± sd over seeds; Δ = paired '
        'difference on the same seeds and labelled volumes, two-sided '
        'paired t-test, Holm-corrected over every comparison of the '
        'table.\n\n'
        f'{render_finetune_markdown(rows, [b for b, _ in baselines])}\n',
        dict(records=records, rows=rows))


def report(run, names: List[str], seconds: float) -> None:
    """``ablation.md`` / ``ablation.json`` and ``spectra.png``."""
    work, args = run.work, run.args
    from medssl.analysis.ablation import (plot_mean_spectra, render_markdown,
                                          summarize)
    from medssl.analysis.data_efficiency.running import read_metric
    records, spectra = [], {}
    for name in names:
        for seed in args.seeds:
            with open(osp.join(collapse_dir(work, name, seed),
                               'collapse.json')) as f:
                emb = next(iter(json.load(f).values()))['embeddings']
            rec = dict(variant=name, seed=seed,
                       mDice=read_metric(osp.join(probe_dir(work, name, seed),
                                                  'test')))
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
    plot_mean_spectra(spectra, osp.join(work, 'spectra.png'))
    _write_report(
        run, 'ablation', 'Ablation', budget, seconds,
        'mean ± sd [95 % CI] over seeds; the last column is the paired mDice '
        'difference to MoCo v2 on the same seeds.\n\n'
        f'{table}\n\nSpectra: spectra.png\n',
        dict(records=records, summary=summary))
