"""Segment whole CT volumes with a 2D slice model.

Geometry (DESIGN.md, ``ct_io``):

1. read the NIfTI with nibabel (HU = ``get_fdata()``, slope/intercept applied);
2. reorient to the closest canonical RAS+ frame with ``ct_io.to_canonical``
   -- the same function (and frame) the converters slice with;
3. axial slice ``z`` -> 2D image ``ct_io.canonical_to_slice(vol, z)``;
4. the config's *test pipeline* (loading transforms removed: the slice is
   already HU float32 (H, W, 1)) windows/normalises each slice;
5. ``model.test_step`` in batches (progress bar) -> label slices;
6. ``ct_io.slices_to_canonical`` -> canonical labels -> back to the original
   array orientation with ``ct_io.from_canonical``;
7. saved as uint8 NIfTI with the input's affine and header (data dtype uint8,
   scl_slope/scl_inter reset), atomically (hidden temporary + rename).

Errors name the file (:class:`VolumeError`); over a folder, every good file
is written and the bad ones are collected (:func:`segment_path`). The
checkpoint is read weights-only and loaded strictly
(``medssl.utils.checkpoint``).
"""
import copy
import os
import os.path as osp
from typing import Callable, List, Optional, Sequence, Tuple, Union

import nibabel as nib
import numpy as np
import torch
from mmengine.config import Config
from mmengine.dataset import Compose
from mmengine.utils import ProgressBar

from medssl.datasets.converters import ct_io

__all__ = [
    'init_segmentor', 'build_slice_pipeline', 'volume_to_canonical',
    'canonical_to_original', 'inference_slices', 'inference_volume',
    'segment_nifti', 'segment_path', 'VolumeError'
]

_LOADING = ('LoadCTSlice', 'LoadAnnotations', 'LoadImageFromFile',
            'LoadImageFromNDArray', 'LoadBiomedicalImageFromFile',
            'LoadBiomedicalAnnotation', 'LoadDepthAnnotation')


class VolumeError(ValueError):
    """A volume that cannot be segmented; the message names the file."""


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


def volume_to_canonical(img: nib.spatialimages.SpatialImage
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """(canonical float32 HU array, ornt of the original array axes)."""
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if data.ndim == 4 and data.shape[-1] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise ValueError(f'expected a 3D volume, got shape {data.shape}')
    canonical, _, ornt = ct_io.to_canonical(data, img.affine)
    return np.ascontiguousarray(canonical), ornt


def canonical_to_original(canonical: np.ndarray,
                          ornt: np.ndarray) -> np.ndarray:
    """Inverse of :func:`volume_to_canonical`'s reorientation."""
    return ct_io.from_canonical(canonical, ornt)


def _to_label(sample) -> np.ndarray:
    data = sample.pred_sem_seg.data if hasattr(sample, 'pred_sem_seg') \
        else sample['pred_sem_seg']['data']
    return data.squeeze(0).cpu().numpy()


@torch.no_grad()
def inference_slices(model: torch.nn.Module,
                     slices: Sequence[np.ndarray],
                     pipeline: Callable,
                     batch_size: int = 8,
                     progress: bool = True) -> List[np.ndarray]:
    """Segment 2D HU slices ((H, W) float) -> list of (H, W) label arrays."""
    out = []
    bar = ProgressBar(len(slices)) if progress else None
    for start in range(0, len(slices), batch_size):
        inputs, samples = [], []
        for i, hu in enumerate(slices[start:start + batch_size]):
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
        for p in preds:
            out.append(_to_label(p).astype(np.uint8))
        if bar is not None:
            for _ in preds:
                bar.update()
    if bar is not None:
        print()
    return out


def inference_volume(model: torch.nn.Module,
                     img: nib.spatialimages.SpatialImage,
                     pipeline: Optional[Callable] = None,
                     batch_size: int = 8,
                     progress: bool = True) -> np.ndarray:
    """Segment a loaded NIfTI; returns uint8 labels in the ORIGINAL array
    orientation and shape."""
    if pipeline is None:
        pipeline = build_slice_pipeline(model.cfg)
    canonical, ornt = volume_to_canonical(img)
    slices = [ct_io.canonical_to_slice(canonical, z)
              for z in range(canonical.shape[2])]
    labels = inference_slices(model, slices, pipeline, batch_size, progress)
    lab_canonical = ct_io.slices_to_canonical(labels)
    assert lab_canonical.shape == canonical.shape
    labels = canonical_to_original(lab_canonical, ornt)
    assert labels.shape == img.shape[:3], (labels.shape, img.shape)
    return labels.astype(np.uint8)


def save_labels(labels: np.ndarray, like: nib.spatialimages.SpatialImage,
                path: str) -> nib.Nifti1Image:
    """Write uint8 labels with ``like``'s affine and header."""
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(labels.astype(np.uint8), like.affine, header)
    out.header.set_slope_inter(1.0, 0.0)
    if hasattr(like.header, 'get_qform'):
        qform, qcode = like.header.get_qform(coded=True)
        sform, scode = like.header.get_sform(coded=True)
        if qcode:
            out.set_qform(qform, int(qcode))
        if scode:
            out.set_sform(sform, int(scode))
    d, name = osp.split(osp.abspath(path))
    os.makedirs(d, exist_ok=True)
    # all or nothing: a hidden temporary with the same suffix, then rename
    suffix = '.nii.gz' if name.endswith('.nii.gz') else osp.splitext(name)[1]
    tmp = osp.join(d, f'.{name}.{os.getpid()}.tmp{suffix}')
    try:
        nib.save(out, tmp)
        os.replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)
    return out


def segment_nifti(model, src: str, dst: str, pipeline=None,
                  batch_size: int = 8, progress: bool = True) -> np.ndarray:
    """Segment ``src`` into ``dst``; a bad input raises :class:`VolumeError`
    ``<src>: <problem>`` and writes nothing."""
    try:
        img = nib.load(src)
        labels = inference_volume(model, img, pipeline, batch_size, progress)
    except Exception as e:  # noqa: BLE001 -- truncated gz, 2D, header, ...
        raise VolumeError(f'{src}: {type(e).__name__}: {e}') from e
    save_labels(labels, img, dst)
    return labels


def _is_nifti(name: str) -> bool:
    return name.endswith('.nii') or name.endswith('.nii.gz')


def segment_path(model, src: str, dst: str, pipeline=None,
                 batch_size: int = 8, progress: bool = True,
                 failed: Optional[list] = None) -> List[str]:
    """A NIfTI file -> file; a folder of NIfTI files -> folder (same names).
    Returns the written paths.

    Over a folder a bad file does not stop the others: every good file is
    written, and the ``(path, message)`` of each bad one is appended to
    ``failed`` -- or, without ``failed``, a :class:`VolumeError` naming every
    bad file is raised after the good ones are written."""
    if pipeline is None:
        pipeline = build_slice_pipeline(model.cfg)
    if osp.isdir(src):
        names = sorted(n for n in os.listdir(src) if _is_nifti(n))
        if not names:
            raise FileNotFoundError(f'no .nii/.nii.gz files in {src}')
        os.makedirs(dst, exist_ok=True)
        written, errors = [], []
        for n in names:
            try:
                segment_nifti(model, osp.join(src, n), osp.join(dst, n),
                              pipeline, batch_size, progress)
            except VolumeError as e:
                errors.append((osp.join(src, n), str(e)))
                continue
            written.append(osp.join(dst, n))
        if failed is not None:
            failed.extend(errors)
        elif errors:
            raise VolumeError(f'{len(errors)}/{len(names)} files failed: ' +
                              '; '.join(msg for _, msg in errors))
        return written
    if not _is_nifti(src):
        raise ValueError(f'{src} is neither a NIfTI file nor a folder')
    if osp.isdir(dst) or dst.endswith(os.sep):
        dst = osp.join(dst, osp.basename(src))
    segment_nifti(model, src, dst, pipeline, batch_size, progress)
    return [dst]
