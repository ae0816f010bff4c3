"""NIfTI files and folders through :mod:`medssl.apis.inference`.

:func:`plan_outputs` pairs every input with its output and refuses bad
paths before anything is read; :func:`segment_nifti` reads one volume
(:mod:`medssl.apis.volume_io`), segments it
(:func:`~medssl.apis.inference.inference_volume`) and writes the mask;
:func:`segment_path` does a file or a folder. Errors name the file
(:class:`VolumeError`); over a folder, every good file is written and the
bad ones are collected.
"""
import os
import os.path as osp
import sys
from typing import List, Optional, Tuple

import nibabel as nib
import numpy as np

from .inference import build_slice_pipeline, check_batch_size, inference_volume
from .volume_io import non_hu_warning, save_labels

__all__ = ['VolumeError', 'plan_outputs', 'segment_nifti', 'segment_path']


class VolumeError(ValueError):
    """A volume that cannot be segmented; the message names the file."""


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
