"""The collapse report of pretraining checkpoints.

Used by ``tools/analysis_tools/collapse.py``. For each checkpoint and each
embedding type of :mod:`medssl.analysis.embeddings`: Jing et al.'s
spectrum, effective rank, RankMe, normalised std and uniformity
(:func:`medssl.analysis.spectrum.collapse_metrics`), plus the alignment
between two augmented views when requested; saved as JSON and a plot of the
spectra.
"""
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, Optional, Sequence

import numpy as np

from medssl.utils.atomic import atomic_write_bytes
from .embeddings import (EMBEDDING_TYPES, _quiet_init_weights,
                         build_slice_dataset, build_ssl_model,
                         default_eval_pipeline, extract_embeddings,
                         load_weights)
from .spectrum import alignment, collapse_metrics

__all__ = ['analyze_checkpoints', 'plot_spectra', 'save_report']


def analyze_checkpoints(cfg,
                        checkpoints: 'OrderedDict[str, Optional[str]]',
                        data_root: Optional[str] = None,
                        num_samples: Optional[int] = 512,
                        batch_size: int = 32,
                        img_size: Optional[int] = None,
                        with_alignment: bool = False,
                        device: Optional[str] = None,
                        progress: bool = True,
                        logger=None,
                        seed: int = 0) -> Dict:
    """Collapse report ``{name: {embedding type: metrics}}`` for each
    checkpoint (metrics of :func:`collapse_metrics`, with ``alignment``
    between two views of the config's training pipeline when
    ``with_alignment``). ``seed`` seeds python/numpy/torch before each model
    is built, so a ``'random'`` checkpoint (the random-init baseline) and
    the augmented views are the same in every run with that seed."""
    if device is None:
        from medssl.cli import resolve_device
        device = resolve_device('auto')
    from medssl.utils import register_all_modules
    register_all_modules()
    dataset = build_slice_dataset(cfg, default_eval_pipeline(cfg, img_size),
                                  data_root, num_samples)
    pair_dataset = None
    if with_alignment:
        pair_dataset = build_slice_dataset(cfg, None, data_root, num_samples)
    report = OrderedDict()
    from mmengine.runner import set_random_seed
    for name, ckpt in checkpoints.items():
        set_random_seed(seed)
        model = build_ssl_model(cfg)
        if ckpt in (None, 'random', 'none') and hasattr(model, 'init_weights'):
            _quiet_init_weights(model)
        load_weights(model, ckpt, logger=logger)
        emb = extract_embeddings(model, dataset, batch_size, device, progress)
        pairs = None
        if pair_dataset is not None:
            set_random_seed(seed)
            pairs = extract_embeddings(model, pair_dataset, batch_size, device,
                                       progress)
        res = OrderedDict()
        for etype, per_view in emb.items():
            m = collapse_metrics(per_view[0])
            if pairs is not None and etype in pairs and \
                    len(pairs[etype]) >= 2:
                m['alignment'] = alignment(pairs[etype][0], pairs[etype][1])
            res[etype] = m
        report[name] = dict(checkpoint=ckpt, embeddings=res)
    return report


def plot_spectra(report: Dict, path: str, floor: float = 1e-12) -> None:
    """One subplot per embedding type; log10 of each checkpoint's
    covariance singular values (descending) vs rank index."""
    from .figures import finish_axes, save_figure, subplots
    etypes = [
        t for t in EMBEDDING_TYPES
        if any(t in r['embeddings'] for r in report.values())
    ]
    fig, axes = subplots(1, max(len(etypes), 1),
                         figsize=(4.5 * max(len(etypes), 1), 3.8),
                         squeeze=False)
    for ax, etype in zip(axes[0], etypes):
        dim = '?'
        for name, r in report.items():
            m = r['embeddings'].get(etype)
            if m is None:
                continue
            dim = m['dim']
            s = np.maximum(np.asarray(m['spectrum'], dtype=np.float64), floor)
            ax.plot(np.arange(1, s.size + 1),
                    np.log10(s),
                    label=f"{name} (erank {m['effective_rank']:.1f}, "
                    f"RankMe {m['rankme']:.1f})")
        ax.set_title(f'{etype} ({dim}-d)')
        finish_axes(ax, 'singular value rank index', 'log10 singular value')
    save_figure(fig, path)


def save_report(report: Dict,
                out_dir: str,
                name: str = 'collapse') -> Sequence[str]:
    """Write ``<name>.json`` and ``<name>.png``; return their paths."""
    os.makedirs(out_dir, exist_ok=True)
    json_path = osp.join(out_dir, f'{name}.json')
    png_path = osp.join(out_dir, f'{name}.png')
    atomic_write_bytes(json_path, json.dumps(report, indent=1).encode(),
                       durable=False)
    plot_spectra(report, png_path)
    return json_path, png_path
