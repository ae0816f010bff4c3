"""AbdomenCT-1K NIfTI -> slices (unlabelled pretraining data).

Raw layout: ``<root>/AbdomenCT-1K-ImagePart*/Case_00001_0000.nii.gz`` (images
may be spread over several parts) and, optionally,
``<root>/Mask/Case_00001.nii.gz``. Case id = image stem without the ``_0000``
channel suffix. Writes ``splits/pretrain.txt``: slices that contain body (all-
air slices dropped by default) of every case except the val and test volumes
of the segmentation split (:func:`segmentation_split`), which pretraining
must not see.
"""
import json
import os.path as osp
import re
from typing import Dict, List

from .options import CaseSpec, ConversionError, glob_nifti, nifti_stem
from .run import run_conversion, write_split_files, write_summary

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
    images = sorted(glob_nifti(root, img_glob),
                    key=lambda p: (_case_id(p), p))
    if not images:
        raise ConversionError(
            f'no AbdomenCT-1K images matching {img_glob!r} under {root}')
    masks = {}
    if with_masks and mask_glob:
        masks = {nifti_stem(p): p
                 for p in glob_nifti(root, mask_glob)}
    return [CaseSpec(_case_id(p), p, masks.get(_case_id(p))) for p in images]


def convert_abdomen1k(root: str,
                      out_dir: str,
                      img_glob: str = DEFAULT_IMG_GLOB,
                      mask_glob: str = DEFAULT_MASK_GLOB,
                      with_masks: bool = True,
                      keep_empty: bool = False,
                      val_every: int = 5,
                      **run) -> dict:
    """Convert AbdomenCT-1K; returns the summary (also ``summary.json``).

    Masks are optional (converted to ``ann_dir`` where present, validated
    against ids 0..4). Slices with body fraction <= ``min_body_fraction``
    are dropped unless ``keep_empty``.
    ``run``: the options of every converter
    (:func:`~medssl.datasets.converters.run.run_conversion`: ``nproc``,
    ``threads``, ``img_format``, ``on_error``, ...).
    ``val_every``: the cases with masks are also split by volume for
    segmentation (:func:`segmentation_split`): ``splits/test.txt`` (held
    out), ``splits/val.txt`` (model selection) and ``splits/train.txt``;
    ``splits/pretrain.txt`` leaves the val and test cases out.
    """
    specs = find_abdomen1k_cases(root, img_glob, mask_glob, with_masks)
    converted, skipped, opts = run_conversion(
        specs, out_dir, ABDOMEN1K_LABEL_IDS, False, keep_empty=keep_empty,
        **run)
    if not converted:
        raise ConversionError(f'no case of {root} could be converted: '
                              f'{skipped}')
    cases = [r['case'] for r in converted]
    seg = segmentation_split(out_dir, cases, val_every)
    # pretraining must not see the volumes segmentation is selected (val) or
    # judged (test) on; the masked training cases stay in, as unlabelled data
    held_out = set(seg.get('val', [])) | set(seg.get('test', []))
    splits = dict(pretrain=write_split_files(
        out_dir, 'pretrain', [c for c in cases if c not in held_out]))
    for split, split_cases in seg.items():
        splits[split] = write_split_files(out_dir, split, split_cases)
    return write_summary(out_dir, 'abdomen1k', converted, skipped, splits,
                         opts.img_format)


def segmentation_split(out_dir: str, cases: List[str],
                       val_every: int) -> Dict[str, List[str]]:
    """Volume-level train/val/test split of the committed cases that have a
    mask, deterministic (sorted case ids), so it never depends on the
    conversion order or ``--nproc``: every ``val_every``-th masked case is
    ``test`` (the held-out set), every ``val_every``-th of the remaining
    ones is ``val`` (model selection), the rest ``train``. Each of test/val
    keeps at least one case; ``{}`` when no case would be left for
    training."""

    def has_mask(case):
        with open(osp.join(out_dir, 'meta', f'{case}.json')) as f:
            return json.load(f).get('label') is not None

    labelled = sorted(c for c in cases if has_mask(c))
    if not labelled or val_every < 2:
        return {}
    test = labelled[val_every - 1::val_every] or labelled[-1:]
    rest = [c for c in labelled if c not in test]
    val = rest[val_every - 1::val_every] or rest[-1:]
    train = [c for c in rest if c not in val]
    return dict(train=train, val=val, test=test) if train else {}
