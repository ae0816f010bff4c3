"""Phantom datasets on disk: the BTCV and AbdomenCT-1K raw NIfTI layouts.

:func:`write_phantom_dataset` writes :func:`.phantoms.make_phantom_case`
cases under a dataset's file names and folders (:func:`phantom_case_names`
gives the case ids), optionally with deliberately broken files
(:data:`BROKEN_KINDS`) for the converters' error tests.
"""
import os
import os.path as osp
from typing import List, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np

from .phantoms import make_phantom_case

__all__ = [
    'BTCV_CASE_IDS', 'BROKEN_KINDS', 'write_phantom_dataset',
    'phantom_case_names'
]

BTCV_CASE_IDS = tuple(list(range(1, 11)) + list(range(21, 41)))

#: Deliberately broken inputs ``write_phantom_dataset(broken=...)`` can make.
BROKEN_KINDS = ('truncated', 'shape_mismatch', 'affine_mismatch',
                'float_labels', 'unknown_labels')


def phantom_case_names(layout: str, num_cases: int,
                       case_ids: Optional[Sequence[int]] = None
                       ) -> List[str]:
    """Case ids (image stems without channel suffix) the writer uses."""
    if layout == 'btcv':
        ids = list(case_ids) if case_ids is not None else \
            list(BTCV_CASE_IDS[:num_cases])
        if case_ids is None and num_cases > len(BTCV_CASE_IDS):
            raise ValueError('BTCV has at most 30 training cases')
        return [f'img{i:04d}' for i in ids]
    if layout == 'abdomen1k':
        ids = list(case_ids) if case_ids is not None else \
            list(range(1, num_cases + 1))
        return [f'Case_{i:05d}' for i in ids]
    raise ValueError(f'unknown layout {layout!r}')


def save_nifti(data: np.ndarray, affine: np.ndarray, path: str,
               slope: float = 1.0, inter: float = 0.0) -> None:
    img = nib.Nifti1Image(data, affine)
    img.header.set_xyzt_units('mm', 'sec')
    if data.dtype == np.int16:
        img.header.set_slope_inter(slope, inter)
    os.makedirs(osp.dirname(path), exist_ok=True)
    nib.save(img, path)


def _paths(root: str, layout: str, name: str, index: int,
           num_cases: int) -> Tuple[str, str]:
    if layout == 'btcv':
        num = name[len('img'):]
        return (osp.join(root, 'RawData', 'Training', 'img', f'{name}.nii.gz'),
                osp.join(root, 'RawData', 'Training', 'label',
                         f'label{num}.nii.gz'))
    part = 1 if index < (num_cases + 1) // 2 else 2
    return (osp.join(root, f'AbdomenCT-1K-ImagePart{part}',
                     f'{name}_0000.nii.gz'),
            osp.join(root, 'Mask', f'{name}.nii.gz'))


def write_phantom_dataset(root: str,
                          layout: str = 'btcv',
                          num_cases: int = 4,
                          seed: int = 0,
                          shape: Sequence[int] = (64, 64, 12),
                          broken: Sequence[str] = (),
                          case_ids: Optional[Sequence[int]] = None,
                          with_labels: bool = True,
                          **case_kwargs) -> List[str]:
    """Write ``num_cases`` phantoms in a dataset's raw layout.

    BTCV: ``RawData/Training/img/img0001.nii.gz`` and
    ``RawData/Training/label/label0001.nii.gz`` (ids 0001-0010, 0021-0040
    in that order, or ``case_ids``). AbdomenCT-1K:
    ``AbdomenCT-1K-ImagePart{1,2}/Case_00001_0000.nii.gz`` (first half of
    the cases in Part1, the rest in Part2) and ``Mask/Case_00001.nii.gz``.

    ``broken``: kinds from :data:`BROKEN_KINDS`; the i-th kind breaks the
    i-th case counted from the *last* one (so the first cases stay valid).
    'truncated' truncates the image .gz, 'shape_mismatch' / 'affine_mismatch'
    write a label that does not match its image, 'float_labels' stores
    non-integer label values, 'unknown_labels' adds an out-of-range id.

    Returns the written paths (image, then label, per case).
    """
    names = phantom_case_names(layout, num_cases, case_ids)
    for kind in broken:
        if kind not in BROKEN_KINDS:
            raise ValueError(f'unknown broken kind {kind!r}')
    if len(broken) > len(names):
        raise ValueError('more broken kinds than cases')
    broken_of = {names[len(names) - 1 - i]: k for i, k in enumerate(broken)}
    written = []
    for index, name in enumerate(names):
        case = make_phantom_case(seed, layout, shape, index=index,
                                 **case_kwargs)
        img_path, lbl_path = _paths(root, layout, name, index, len(names))
        save_nifti(case['data'], case['affine'], img_path, case['slope'],
                   case['inter'])
        written.append(img_path)
        kind = broken_of.get(name)
        if with_labels or kind in ('shape_mismatch', 'affine_mismatch',
                                   'float_labels', 'unknown_labels'):
            lbl = case['label_data']
            lbl_affine = case['affine']
            if kind == 'shape_mismatch':
                lbl = lbl[:, :, :-1] if lbl.shape[2] > 1 else lbl[:-1]
            elif kind == 'affine_mismatch':
                lbl_affine = lbl_affine.copy()
                lbl_affine[:3, 3] += 25.0
            elif kind == 'float_labels':
                lbl = lbl.astype(np.float32)
                lbl[lbl > 0] += 0.5
            elif kind == 'unknown_labels':
                lbl = lbl.copy()
                lbl.flat[lbl.size // 2] = 99
            save_nifti(np.ascontiguousarray(lbl), lbl_affine, lbl_path)
            written.append(lbl_path)
        if kind == 'truncated':
            with open(img_path, 'rb') as f:
                blob = f.read()
            with open(img_path, 'wb') as f:
                f.write(blob[:len(blob) // 2])
    return written
