"""AbdomenCT-1K NIfTI -> slices (unlabelled pretraining data).

Raw layout: ``<root>/AbdomenCT-1K-ImagePart*/Case_00001_0000.nii.gz`` (images
may be spread over several parts) and, optionally,
``<root>/Mask/Case_00001.nii.gz``. Case id = image stem without the ``_0000``
channel suffix. Writes ``splits/pretrain.txt``: slices that contain body (all-
air slices dropped by default).
"""
import glob
import os.path as osp
import re
from typing import List, Optional

from .common import (CaseSpec, ConversionError, ConvertOptions,
                     auto_threads, convert_cases, nifti_stem,
                     write_split_files, write_summary)

__all__ = ['ABDOMEN1K_LABEL_IDS', 'find_abdomen1k_cases', 'convert_abdomen1k']

ABDOMEN1K_LABEL_IDS = tuple(range(5))
DEFAULT_IMG_GLOB = 'AbdomenCT-1K-ImagePart*/*.nii*'
DEFAULT_MASK_GLOB = 'Mask/*.nii*'


def _case_id(path: str) -> str:
    return re.sub(r'_0000$', '', nifti_stem(path))


def find_abdomen1k_cases(root: str,
                         img_glob: str = DEFAULT_IMG_GLOB,
                         mask_glob: str = DEFAULT_MASK_GLOB,
                         with_masks: bool = True) -> List[CaseSpec]:
    images = sorted(glob.glob(osp.join(root, img_glob)),
                    key=lambda p: (_case_id(p), p))
    if not images:
        raise ConversionError(
            f'no AbdomenCT-1K images matching {img_glob!r} under {root}')
    masks = {}
    if with_masks and mask_glob:
        masks = {nifti_stem(p): p
                 for p in sorted(glob.glob(osp.join(root, mask_glob)))}
    return [CaseSpec(_case_id(p), p, masks.get(_case_id(p))) for p in images]


def convert_abdomen1k(root: str,
                      out_dir: str,
                      img_glob: str = DEFAULT_IMG_GLOB,
                      mask_glob: str = DEFAULT_MASK_GLOB,
                      with_masks: bool = True,
                      nproc: int = 1,
                      on_error: str = 'fail',
                      keep_empty: bool = False,
                      min_body_fraction: float = 0.0,
                      progress: bool = True,
                      threads: Optional[int] = None,
                      img_format: str = 'npy',
                      after_slice=None) -> dict:
    """Convert AbdomenCT-1K; returns the summary (also ``summary.json``).

    Masks are optional (converted to ``ann_dir`` where present, validated
    against ids 0..4). Slices with body fraction <= ``min_body_fraction``
    are dropped unless ``keep_empty``.
    ``img_format``: image slices as uint16 ``.npy`` (``'npy'``, default) or
    16-bit PNG (``'png'``); label slices are uint8 PNG either way.
    """
    specs = find_abdomen1k_cases(root, img_glob, mask_glob, with_masks)
    opts = ConvertOptions(
        label_ids=ABDOMEN1K_LABEL_IDS,
        require_label=False,
        keep_empty=keep_empty,
        min_body_fraction=min_body_fraction,
        threads=auto_threads(threads, nproc),
        img_format=img_format)
    converted, skipped = convert_cases(specs, out_dir, opts, nproc, on_error,
                                       progress, after_slice)
    if not converted:
        raise ConversionError(f'no case of {root} could be converted: '
                              f'{skipped}')
    n = write_split_files(out_dir, 'pretrain',
                          [r['case'] for r in converted])
    return write_summary(out_dir, 'abdomen1k', converted, skipped,
                         dict(pretrain=n), img_format)
