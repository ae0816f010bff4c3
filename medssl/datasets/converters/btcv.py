"""BTCV (Synapse multi-atlas) NIfTI -> slices.

Raw layout: ``<root>/RawData/Training/img/img0001.nii.gz`` and
``<root>/RawData/Training/label/label0001.nii.gz``. Case id = image stem
(``img0001``); the label of ``img<N>`` is ``label<N>``.
Splits come from the shipped ``medssl/datasets/splits/btcv_13organ.json``
(20 train / 4 val / 6 test volumes) or ``split_file``; only listed cases that exist are
kept, and a split with no existing case raises :class:`ConversionError`.
"""
import json
import os.path as osp
from typing import Dict, List, Optional

from .options import CaseSpec, ConversionError, glob_nifti, nifti_stem
from .run import run_conversion, write_split_files, write_summary

__all__ = [
    'BTCV_SPLIT_FILE', 'BTCV_LABEL_IDS', 'load_split_file', 'find_btcv_cases',
    'convert_btcv'
]

BTCV_SPLIT_FILE = osp.join(
    osp.dirname(osp.dirname(osp.abspath(__file__))), 'splits',
    'btcv_13organ.json')
BTCV_LABEL_IDS = tuple(range(14))
DEFAULT_IMG_GLOB = 'RawData/Training/img/img*.nii*'
DEFAULT_LABEL_GLOB = 'RawData/Training/label/label*.nii*'


def load_split_file(path: str) -> Dict[str, List[str]]:
    """A split file: JSON ``{split: [case, ...], ...}`` (keys that are not
    lists, e.g. "description", are ignored). Cases may not repeat."""
    try:
        with open(path) as f:
            obj = json.load(f)
    except (OSError, ValueError) as e:
        raise ConversionError(f'cannot read split file {path}: {e}') from e
    splits = {k: [str(c) for c in v] for k, v in obj.items()
              if isinstance(v, list)}
    seen = {}
    for split, cases in splits.items():
        for c in cases:
            if c in seen:
                raise ConversionError(
                    f'split file {path}: case {c} is in both {seen[c]} and '
                    f'{split} (splits are by volume)')
            seen[c] = split
    if not splits:
        raise ConversionError(f'split file {path} defines no split')
    return splits


def find_btcv_cases(root: str, img_glob: str = DEFAULT_IMG_GLOB,
                    label_glob: str = DEFAULT_LABEL_GLOB) -> List[CaseSpec]:
    images = glob_nifti(root, img_glob)
    if not images:
        raise ConversionError(
            f'no BTCV images matching {img_glob!r} under {root}')
    labels = {}
    for p in glob_nifti(root, label_glob):
        stem = nifti_stem(p)
        key = 'img' + stem[len('label'):] if stem.startswith('label') \
            else stem
        labels[key] = p
    return [
        CaseSpec(case=nifti_stem(p), image=p, label=labels.get(nifti_stem(p)))
        for p in images
    ]


def convert_btcv(root: str,
                 out_dir: str,
                 split_file: Optional[str] = None,
                 img_glob: str = DEFAULT_IMG_GLOB,
                 label_glob: str = DEFAULT_LABEL_GLOB,
                 keep_empty: bool = True,
                 **run) -> dict:
    """Convert BTCV; returns the summary dict (also ``summary.json``).

    Every found case is converted (labels required); split files list only
    the cases of each split that were converted. Every slice is kept by
    default (``keep_empty``), so volumes can be rebuilt for 3D Dice.
    ``run``: the options of every converter
    (:func:`~medssl.datasets.converters.run.run_conversion`: ``nproc``,
    ``threads``, ``img_format``, ``on_error``, ...).
    """
    split_file = split_file or BTCV_SPLIT_FILE
    splits = load_split_file(split_file)
    specs = find_btcv_cases(root, img_glob, label_glob)
    found = {s.case for s in specs}
    for split, cases in splits.items():
        if not found & set(cases):
            raise ConversionError(
                f'split {split!r} of {split_file} has no case under {root} '
                f'(found {sorted(found)}); pass --split-file with your own '
                f'split')
    converted, skipped, opts = run_conversion(
        specs, out_dir, BTCV_LABEL_IDS, True, keep_empty=keep_empty, **run)
    done = {r['case'] for r in converted}
    split_sizes = {}
    for split, cases in splits.items():
        kept = sorted(done & set(cases))
        if not kept:
            raise ConversionError(
                f'split {split!r}: every case failed to convert '
                f'({sorted(set(cases) & found)})')
        split_sizes[split] = write_split_files(out_dir, split, kept)
    return write_summary(out_dir, 'btcv', converted, skipped, split_sizes,
                         opts.img_format)
