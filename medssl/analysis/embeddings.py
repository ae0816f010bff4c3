"""Embeddings of a pretraining model on a slice set, and the collapse report.

Used by ``tools/analysis_tools/collapse.py``. Model-type agnostic: any model
with ``backbone`` and ``neck`` attributes (mmselfsup ``MoCo``, ``SimCLR``,
``BYOL``, ``BarlowTwins``, ``DenseCL``, medssl ``MedMoCo``) works. Per
checkpoint three embedding types are extracted (eval mode, no grad):

* ``backbone``: global average of the last backbone stage (e.g. 2048-d);
* ``decorrelated``: the same after the model's ``decorrelation`` module
  (MedMoCo's ``EigenDecorrelationNeck``), only when the model has one;
* ``projector``: the neck's (first) output, called as ``neck((last_map,))``
  (e.g. 128-d).

For each: Jing et al.'s spectrum, effective rank, RankMe, normalised std and
uniformity (:func:`medssl.analysis.spectrum.collapse_metrics`), plus the
alignment between two augmented views when requested.
"""
import copy
import json
import os
import os.path as osp
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from torch import nn

from .pooling import pool_embedding
from .spectrum import alignment, collapse_metrics

__all__ = [
    'EMBEDDING_TYPES', 'default_eval_pipeline', 'build_slice_dataset',
    'build_ssl_model', 'load_weights', 'model_embeddings',
    'extract_embeddings', 'analyze_checkpoints', 'plot_spectra', 'save_report'
]

EMBEDDING_TYPES = ('backbone', 'decorrelated', 'projector')


def _find_transform(pipeline, type_name):
    for t in pipeline or []:
        if isinstance(t, dict) and t.get('type') == type_name:
            return t
    return None


def _train_dataset_cfg(cfg):
    ds = cfg.train_dataloader.dataset
    # unwrap dataset wrappers (RepeatDataset / ConcatDataset of one)
    while 'dataset' in ds and 'pipeline' not in ds:
        ds = ds.dataset
    return ds


def default_eval_pipeline(cfg, img_size: Optional[int] = None) -> List[dict]:
    """Deterministic single-view pipeline for a pretraining config.

    The config's ``test_pipeline`` / ``val_pipeline`` (top-level variables)
    when defined; otherwise ``LoadCTSlice`` + the train pipeline's
    ``HUWindow`` (default window (-175, 250)) + ``Resize`` to
    ``img_size`` (default: the config's ``crop_size``, else 224) +
    ``PackSelfSupInputs``.
    """
    for key in ('test_pipeline', 'val_pipeline'):
        if cfg.get(key) is not None:
            return copy.deepcopy(list(cfg.get(key)))
    train_pipeline = _train_dataset_cfg(cfg).get('pipeline', [])
    window = _find_transform(train_pipeline, 'HUWindow')
    window = copy.deepcopy(dict(window)) if window is not None else dict(
        type='HUWindow', windows=[(-175, 250)])
    size = int(img_size or cfg.get('crop_size', 224))
    return [
        dict(type='LoadCTSlice'),
        window,
        dict(type='Resize', scale=(size, size), keep_ratio=False),
        dict(type='PackSelfSupInputs', meta_keys=['img_path']),
    ]


def build_slice_dataset(cfg,
                        pipeline: Optional[List[dict]] = None,
                        data_root: Optional[str] = None,
                        num_samples: Optional[int] = None):
    """The config's training dataset with ``pipeline`` (and ``data_root``)
    replaced, restricted to ``num_samples`` evenly spaced samples."""
    from medssl.registry import DATASETS
    ds_cfg = copy.deepcopy(_train_dataset_cfg(cfg))
    ds_cfg = ds_cfg.to_dict() if hasattr(ds_cfg, 'to_dict') else dict(ds_cfg)
    if pipeline is not None:
        ds_cfg['pipeline'] = pipeline
    if data_root is not None:
        ds_cfg['data_root'] = data_root
    dataset = DATASETS.build(ds_cfg)
    if num_samples is not None and num_samples < len(dataset):
        idx = np.unique(
            np.linspace(0,
                        len(dataset) - 1, num_samples).round().astype(int))
        dataset = torch.utils.data.Subset(dataset, idx.tolist())
    return dataset


def build_ssl_model(cfg) -> nn.Module:
    """Build ``cfg.model`` with medssl's registry (default scope set)."""
    from medssl.registry import MODELS
    from medssl.utils import register_all_modules
    register_all_modules()
    return MODELS.build(copy.deepcopy(cfg.model))


def load_weights(model: nn.Module,
                 checkpoint: Optional[str],
                 logger=None) -> nn.Module:
    """Load a checkpoint (``None`` / ``'random'`` keeps the init).

    The modules the analysis reads (backbone, decorrelation, neck) must match
    the checkpoint exactly: a checkpoint of another config raises instead of
    silently analysing half-random weights. Other keys (queue, key encoder,
    heads) are ignored.
    """
    if checkpoint in (None, 'random', 'none'):
        return model
    from mmengine.runner import CheckpointLoader

    from medssl.models.backbones.verified_pretrained import (
        extract_state_dict, verify_and_load)
    state = extract_state_dict(
        CheckpointLoader.load_checkpoint(checkpoint, map_location='cpu'))
    for name in ('backbone', 'decorrelation', 'neck'):
        module = getattr(model, name, None)
        if name == 'decorrelation' and not any(
                k.startswith('decorrelation.') for k in state):
            # e.g. a MoCo v2 checkpoint analysed with a MedMoCo config: the
            # untouched neck is the identity, "decorrelated" = backbone
            continue
        if module is not None:
            verify_and_load(module, state, prefix=f'{name}.',
                            max_missing_ratio=0.0,
                            source=f'{checkpoint} [{name}]')
    return model


def _quiet_init_weights(model: nn.Module) -> None:
    """``model.init_weights()`` without mmengine's per-parameter log."""
    import logging

    from mmengine.logging import MMLogger
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        model.init_weights()
    finally:
        logger.setLevel(level)


@torch.no_grad()
def model_embeddings(model: nn.Module,
                     x: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Embeddings of a preprocessed image batch ``x`` (N, C, H, W)."""
    feats = model.backbone(x)
    if not isinstance(feats, (list, tuple)):
        feats = (feats, )
    out = OrderedDict(backbone=pool_embedding(feats, 'last'))
    decor = getattr(model, 'decorrelation', None)
    g = feats
    if isinstance(decor, nn.Module):
        g = decor(tuple(feats))
        if not isinstance(g, (list, tuple)):
            g = (g, )
        out['decorrelated'] = pool_embedding(g, 'last')
    neck = getattr(model, 'neck', None)
    if isinstance(neck, nn.Module):
        out['projector'] = pool_embedding(neck((g[-1], )), 'first')
    return out


def _batches(dataset, batch_size):
    from mmengine.dataset import default_collate
    loader = torch.utils.data.DataLoader(dataset,
                                         batch_size=batch_size,
                                         shuffle=False,
                                         num_workers=0,
                                         collate_fn=default_collate)
    yield from loader


@torch.no_grad()
def extract_embeddings(model: nn.Module,
                       dataset,
                       batch_size: int = 32,
                       device: str = 'cpu',
                       progress: bool = True) -> Dict[str, List[torch.Tensor]]:
    """``{type: [(N, D) per view]}`` over the whole dataset.

    Every view the pipeline produces is embedded (one for the evaluation
    pipeline, two for a two-view training pipeline).
    """
    model.eval()
    model.to(device)
    views: Dict[str, List[List[torch.Tensor]]] = OrderedDict()
    bar = None
    if progress:
        from mmengine.utils import ProgressBar
        bar = ProgressBar(len(dataset))
    for data in _batches(dataset, batch_size):
        data = model.data_preprocessor(data, False)
        # mmselfsup's preprocessor returns (inputs, data_samples); mmengine's
        # a dict
        inputs = data['inputs'] if isinstance(data, dict) else data[0]
        if isinstance(inputs, torch.Tensor):
            inputs = [inputs]
        for v, x in enumerate(inputs):
            for k, e in model_embeddings(model, x.to(device)).items():
                views.setdefault(k, [])
                while len(views[k]) <= v:
                    views[k].append([])
                views[k][v].append(e.float().cpu())
        if bar is not None:
            bar.update(inputs[0].shape[0])
    if bar is not None:
        print()
    return OrderedDict(
        (k, [torch.cat(c) for c in per_view]) for k, per_view in views.items())


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
        device = 'cuda' if torch.cuda.is_available() else 'cpu'
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
    with open(json_path, 'w') as f:
        json.dump(report, f, indent=1)
    plot_spectra(report, png_path)
    return json_path, png_path
