"""Segment a CT volume with a 2D slice model.

Geometry (DESIGN.md, ``ct_io``):

1. the voxels in their on-disk dtype, scaled to HU a batch of slices at a
   time (:mod:`medssl.apis.volume_io`);
2. reorient to the closest canonical RAS+ frame with ``ct_io.to_canonical``
   -- the same function (and frame) the converters slice with;
3. axial slice ``z`` -> 2D image ``ct_io.canonical_to_slice(vol, z)``;
4. the config's *test pipeline* (loading transforms removed: the slice is
   already HU float32 (H, W, 1)) windows/normalises each slice;
5. ``model.test_step`` in batches (progress bar) -> label slices;
6. each label slice goes back through a canonical view of the uint8 output
   volume, which keeps the original array orientation and shape.

Reading and writing NIfTI files: :mod:`medssl.apis.volume_io`; files and
folders with per-file errors: :mod:`medssl.apis.segment_files`. The
checkpoint is read weights-only and loaded strictly
(``medssl.utils.checkpoint``).
"""
import copy
from typing import Callable, List, Optional, Sequence, Union

import nibabel as nib
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.utils import ProgressBar

from medssl.datasets.converters import ct_io
from .volume_io import raw_volume, scale_to_hu

__all__ = [
    'init_segmentor', 'build_slice_pipeline', 'check_batch_size',
    'inference_slices', 'inference_volume'
]

_LOADING = ('LoadCTSlice', 'LoadAnnotations', 'LoadImageFromFile',
            'LoadImageFromNDArray', 'LoadBiomedicalImageFromFile',
            'LoadBiomedicalAnnotation', 'LoadDepthAnnotation')


def _type_name(t) -> str:
    name = t if isinstance(t, str) else getattr(t, '__name__', str(t))
    return name.split('.')[-1]


def init_segmentor(config: Union[str, Config],
                   checkpoint: Optional[str] = None,
                   device: str = 'cpu',
                   cfg_options: Optional[dict] = None) -> torch.nn.Module:
    """Build the segmentor of ``config`` and load ``checkpoint``.

    Backbone ``init_cfg`` is dropped (the checkpoint holds all weights);
    ``model.cfg`` keeps the config for :func:`build_slice_pipeline`.
    """
    from medssl.registry import MODELS
    from medssl.utils import register_all_modules
    register_all_modules()
    if isinstance(config, str):
        cfg = Config.fromfile(config)
    else:
        cfg = copy.deepcopy(config)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    cfg.model.pop('pretrained', None)
    if 'backbone' in cfg.model:
        cfg.model.backbone.init_cfg = None
    cfg.model.train_cfg = None
    model = MODELS.build(cfg.model)
    if checkpoint is not None:
        from medssl.utils.checkpoint import load_model_checkpoint
        ckpt = load_model_checkpoint(model, checkpoint)
        meta = ckpt.get('meta', {}) if isinstance(ckpt, dict) else {}
        if 'dataset_meta' in meta:
            model.dataset_meta = meta['dataset_meta']
    model.cfg = cfg
    model.to(device)
    model.eval()
    return model


def build_slice_pipeline(cfg: Config) -> Compose:
    """The config's test pipeline without loading transforms."""
    if 'test_pipeline' in cfg:
        pipeline = cfg.test_pipeline
    else:
        pipeline = cfg.test_dataloader.dataset.pipeline
    kept = [copy.deepcopy(t) for t in pipeline
            if _type_name(t['type']) not in _LOADING]
    from medssl.utils import register_all_modules
    register_all_modules()
    return Compose(kept)


def check_batch_size(batch_size) -> int:
    """``batch_size`` as a positive int, else ``ValueError`` (checked before
    any volume is read, so a bad option is not blamed on every file)."""
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f'batch size must be an integer >= 1, got '
                         f'{batch_size!r}')
    return int(batch_size)


def _to_label(sample) -> np.ndarray:
    data = sample.pred_sem_seg.data if hasattr(sample, 'pred_sem_seg') \
        else sample['pred_sem_seg']['data']
    return data.squeeze(0).cpu().numpy()


def _predict_batch(model: torch.nn.Module, slices: Sequence[np.ndarray],
                   pipeline: Callable, start: int) -> List[np.ndarray]:
    """One forward pass: HU slices -> uint8 label slices of the same
    shape; only this batch's inputs and logits are alive."""
    inputs, samples = [], []
    for i, hu in enumerate(slices):
        img = np.asarray(hu, np.float32)[..., None]
        results = dict(
            img=img,
            img_path=f'slice_{start + i:04d}',
            seg_map_path=None,
            img_shape=img.shape[:2],
            ori_shape=img.shape[:2],
            reduce_zero_label=False,
            seg_fields=[])
        packed = pipeline(results)
        inputs.append(packed['inputs'])
        samples.append(packed['data_samples'])
    preds = model.test_step(dict(inputs=inputs, data_samples=samples))
    out = []
    for hu, p in zip(slices, preds):
        lab = _to_label(p)
        if lab.shape != np.shape(hu):
            raise ValueError(f'the model returned a {lab.shape} label for '
                             f'a {np.shape(hu)} slice')
        out.append(lab.astype(np.uint8))
    return out


@torch.no_grad()
def inference_slices(model: torch.nn.Module,
                     slices: Sequence[np.ndarray],
                     pipeline: Callable,
                     batch_size: int = 8,
                     progress: bool = True) -> List[np.ndarray]:
    """Segment 2D HU slices ((H, W) float) -> list of (H, W) label arrays."""
    batch_size = check_batch_size(batch_size)
    out = []
    bar = ProgressBar(len(slices)) if progress else None
    for start in range(0, len(slices), batch_size):
        preds = _predict_batch(model, slices[start:start + batch_size],
                               pipeline, start)
        out += preds
        if bar is not None:
            for _ in preds:
                bar.update()
    if bar is not None:
        print()
    return out


@torch.no_grad()
def inference_volume(model: torch.nn.Module,
                     img: nib.spatialimages.SpatialImage,
                     pipeline: Optional[Callable] = None,
                     batch_size: int = 8,
                     progress: bool = True) -> np.ndarray:
    """Segment a loaded NIfTI; returns uint8 labels in the ORIGINAL array
    orientation and shape.

    Streams: the voxels stay in their on-disk dtype (:func:`raw_volume`),
    ``batch_size`` canonical slices at a time are scaled to float32 HU and
    segmented, and their labels are written straight into the one uint8
    output volume through a canonical *view* of it (no canonical copies, no
    list of slices, no float volume).
    """
    batch_size = check_batch_size(batch_size)
    if pipeline is None:
        pipeline = build_slice_pipeline(model.cfg)
    raw, slope, inter = raw_volume(img)
    canonical = ct_io.to_canonical(raw, img.affine)[0]  # a view
    # Fortran order: the NIfTI on-disk order, so saving needs no copy
    labels = np.zeros(raw.shape, np.uint8, order='F')
    lab_canonical = ct_io.to_canonical(labels, img.affine)[0]  # a view
    assert np.shares_memory(labels, lab_canonical)
    depth = canonical.shape[2]
    bar = ProgressBar(depth) if progress else None
    for start in range(0, depth, batch_size):
        zs = range(start, min(start + batch_size, depth))
        hus = [scale_to_hu(ct_io.canonical_to_slice(canonical, z), slope,
                           inter) for z in zs]
        for z, lab in zip(zs, _predict_batch(model, hus, pipeline, start)):
            # inverse of ct_io.canonical_to_slice
            lab_canonical[:, :, z] = lab.T[::-1, ::-1]
            if bar is not None:
                bar.update()
    if bar is not None:
        print()
    return labels
