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
import sys
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
    'segment_nifti', 'segment_path', 'VolumeError', 'check_batch_size',
    'raw_volume', 'scale_to_hu', 'plan_outputs', 'save_labels'
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
    """(canonical float32 HU array, ornt of the original array axes).

    Holds the whole volume as float32: for geometry checks; inference
    streams (:func:`inference_volume`)."""
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


def check_batch_size(batch_size) -> int:
    """``batch_size`` as a positive int, else ``ValueError`` (checked before
    any volume is read, so a bad option is not blamed on every file)."""
    if isinstance(batch_size, bool) or not isinstance(
            batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f'batch size must be an integer >= 1, got '
                         f'{batch_size!r}')
    return int(batch_size)


def raw_volume(img: nib.spatialimages.SpatialImage
               ) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(raw, slope, inter)``: the 3D voxel array in its on-disk dtype
    (memory-mapped for an uncompressed ``.nii``, read once for ``.nii.gz``)
    and the float32 scaling that turns a piece of it into exactly the values
    of ``img.get_fdata(dtype=np.float32)`` (:func:`scale_to_hu`).

    Never a full float copy: an int16 CT volume costs half its float32 size.
    """
    proxy = img.dataobj
    if hasattr(proxy, 'get_unscaled'):  # nibabel ArrayProxy (a file)
        raw = proxy.get_unscaled()
        slope, inter = getattr(proxy, 'slope', 1.0), getattr(
            proxy, 'inter', 0.0)
    else:  # an in-memory image: get_fdata only casts
        raw, slope, inter = np.asanyarray(proxy), 1.0, 0.0
    if raw.ndim == 4 and raw.shape[-1] == 1:
        raw = raw[..., 0]
    if raw.ndim != 3:
        raise ValueError(f'expected a 3D volume, got shape {raw.shape}')
    if raw.dtype.kind not in 'biuf':
        raise ValueError(f'voxel type {raw.dtype} is not a CT intensity')
    # as nibabel's ArrayProxy._get_scaled(dtype=float32)
    return raw, np.float32(slope), np.float32(inter)


def scale_to_hu(raw: np.ndarray, slope, inter) -> np.ndarray:
    """A piece of :func:`raw_volume`'s array -> float32 HU, the values of
    ``get_fdata(dtype=np.float32)``."""
    from nibabel.volumeutils import apply_read_scaling
    return np.asarray(apply_read_scaling(raw, slope, inter),
                      dtype=np.float32)


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


def save_labels(labels: np.ndarray, like: nib.spatialimages.SpatialImage,
                path: str) -> nib.Nifti1Image:
    """Write uint8 labels with ``like``'s affine and header."""
    header = like.header.copy()
    header.set_data_dtype(np.uint8)
    out = nib.Nifti1Image(np.asarray(labels, dtype=np.uint8), like.affine,
                          header)
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


def non_hu_warning(src: str, img: nib.spatialimages.SpatialImage
                   ) -> Optional[str]:
    """A warning naming ``src`` if its voxels do not look like HU (see
    :func:`medssl.datasets.converters.volume.non_hu_reason`), else None."""
    from medssl.datasets.converters.volume import non_hu_reason
    raw, slope, inter = raw_volume(img)
    lo, hi = (float(v) for v in scale_to_hu(
        np.array([raw.min(), raw.max()]), slope, inter))
    reason = non_hu_reason(img.get_data_dtype(), min(lo, hi), max(lo, hi))
    return None if reason is None else f'{src}: {reason}'


def segment_nifti(model, src: str, dst: str, pipeline=None,
                  batch_size: int = 8, progress: bool = True) -> np.ndarray:
    """Segment ``src`` into ``dst``; a bad input raises :class:`VolumeError`
    ``<src>: <problem>``, a failed write ``<dst>: cannot write: ...``, and
    neither leaves a file behind. Prints a warning naming ``src`` if its
    voxels do not look like HU."""
    batch_size = check_batch_size(batch_size)
    try:
        img = nib.load(src)
        warning = non_hu_warning(src, img)
        if warning:
            print(f'warning: {warning}', file=sys.stderr)
        labels = inference_volume(model, img, pipeline, batch_size, progress)
    except Exception as e:  # noqa: BLE001 -- truncated gz, 2D, header, ...
        raise VolumeError(f'{src}: {type(e).__name__}: {e}') from e
    try:
        save_labels(labels, img, dst)
    except Exception as e:  # noqa: BLE001 -- full disk, read-only, ...
        raise VolumeError(
            f'{dst}: cannot write: {type(e).__name__}: {e}') from e
    return labels


def _is_nifti(name: str) -> bool:
    return name.endswith('.nii') or name.endswith('.nii.gz')


def plan_outputs(src: str, dst: str) -> List[Tuple[str, str]]:
    """``(input file, output file)`` pairs of :func:`segment_path`, checked
    before anything is read or written.

    Raises ``FileNotFoundError`` (no input / no NIfTI in the folder),
    ``ValueError`` (an input that is not NIfTI, an output that cannot be
    one) or :class:`~medssl.utils.output_guard.OutputPathError` (an output
    file that is an input file: same path, symlink or hard link), each
    naming the path.
    """
    from medssl.utils.output_guard import refuse_same_file
    if osp.isdir(src):
        names = sorted(n for n in os.listdir(src) if _is_nifti(n))
        if not names:
            raise FileNotFoundError(f'no .nii/.nii.gz files in {src}')
        if osp.exists(dst) and not osp.isdir(dst):
            raise ValueError(f'output {dst} is a file; the input {src} is a '
                             'folder, so the output must be a folder')
        refuse_same_file(dst, src, 'input folder')
        pairs = [(osp.join(src, n), osp.join(dst, n)) for n in names]
    elif not osp.exists(src):
        raise FileNotFoundError(f'input {src} not found')
    else:
        if not _is_nifti(src):
            raise ValueError(f'{src} is neither a NIfTI file nor a folder')
        if osp.isdir(dst) or dst.endswith(os.sep):
            dst = osp.join(dst, osp.basename(src))
        elif not _is_nifti(dst):
            raise ValueError(f'output {dst} must end with .nii or .nii.gz '
                             '(or be a folder)')
        pairs = [(src, dst)]
    for s, d in pairs:
        refuse_same_file(d, s)
    return pairs


def segment_path(model, src: str, dst: str, pipeline=None,
                 batch_size: int = 8, progress: bool = True,
                 failed: Optional[list] = None) -> List[str]:
    """A NIfTI file -> file; a folder of NIfTI files -> folder (same names).
    Returns the written paths.

    Paths and options are checked first (:func:`plan_outputs`,
    :func:`check_batch_size`): an output that would overwrite an input is
    refused before anything is read. Over a folder a bad file -- unreadable
    input or failed write -- does not stop the others: every good file is
    written, and the ``(path, message)`` of each bad one is appended to
    ``failed`` -- or, without ``failed``, a :class:`VolumeError` naming every
    bad file is raised after the good ones are written."""
    pairs = plan_outputs(src, dst)
    batch_size = check_batch_size(batch_size)
    if pipeline is None:
        pipeline = build_slice_pipeline(model.cfg)
    if len(pairs) == 1 and not osp.isdir(src):
        segment_nifti(model, *pairs[0], pipeline, batch_size, progress)
        return [pairs[0][1]]
    written, errors = [], []
    for s, d in pairs:
        try:
            segment_nifti(model, s, d, pipeline, batch_size, progress)
        except VolumeError as e:
            errors.append((s, str(e)))
            continue
        written.append(d)
    if failed is not None:
        failed.extend(errors)
    elif errors:
        raise VolumeError(f'{len(errors)}/{len(pairs)} files failed: ' +
                          '; '.join(msg for _, msg in errors))
    return written
