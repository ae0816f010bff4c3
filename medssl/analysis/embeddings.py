"""Embeddings of a pretraining model on a slice set.

Used by :mod:`medssl.analysis.collapse_report`. Model-type agnostic: any
model with ``backbone`` and ``neck`` attributes (mmselfsup ``MoCo``,
``SimCLR``, ``BYOL``, ``BarlowTwins``, ``DenseCL``, medssl ``MedMoCo``)
works. The slice set is the config's training dataset with a deterministic
pipeline (:func:`default_eval_pipeline`, :func:`build_slice_dataset`); the
modules read are loaded strictly from the checkpoint (:func:`load_weights`).
Three embedding types are extracted (eval mode, no grad):

* ``backbone``: global average of the last backbone stage (e.g. 2048-d);
* ``decorrelated``: the same after the model's ``decorrelation`` module
  (MedMoCo's ``EigenDecorrelationNeck``), only when the model has one;
* ``projector``: the neck's (first) output, called as ``neck((last_map,))``
  (e.g. 128-d).
"""
import copy
from collections import OrderedDict
from typing import Dict, List, Optional

import numpy as np
import torch
from torch import nn

from .pooling import pool_embedding

__all__ = [
    'EMBEDDING_TYPES', 'default_eval_pipeline', 'build_slice_dataset',
    'build_ssl_model', 'load_weights', 'model_embeddings', 'extract_embeddings'
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
