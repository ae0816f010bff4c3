"""CT-like NIfTI phantoms in the BTCV and AbdomenCT-1K raw layouts.

Everything is deterministic given ``seed``. A phantom is built in the
canonical RAS+ frame (array ``vol[x, y, z]``: x grows towards the patient's
*right*... no: towards patient-Left? -- see below) and then stored in a
per-case *native* orientation with a non-identity affine, so converters must
reorient it back.

Canonical frame (nibabel RAS+): array index ``x`` increases towards the
patient's Right, ``y`` towards Anterior, ``z`` towards Superior.

:func:`make_phantom_case` returns a dict with

- ``hu``: float64 canonical ``(X, Y, Z)`` HU volume, exactly what
  ``nib.as_closest_canonical(img).get_fdata()`` of the written image gives
  (it is computed as ``raw * slope + inter``),
- ``label``: uint8 canonical label volume with the dataset's ids,
- ``canonical_affine``: 4x4 affine of the canonical arrays,
- ``data`` / ``label_data``: the arrays in native (stored) orientation
  (``data`` is the raw int16 array),
- ``affine``: the native 4x4 affine, ``axcodes``: native axis codes,
- ``slope``, ``inter``, ``pad_hu`` (HU outside the circular FOV or None),
  ``spacing`` (canonical order, mm).

Label ids: BTCV 0..13 (see ``BTCV_LABELS``), AbdomenCT-1K 0..4
(background, liver, kidney, spleen, pancreas).
"""
import os
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple

import nibabel as nib
import numpy as np
from nibabel.orientations import (apply_orientation, axcodes2ornt,
                                  inv_ornt_aff, ornt_transform)

__all__ = [
    'BTCV_CASE_IDS', 'BTCV_LABELS', 'ABDOMEN1K_LABELS', 'BROKEN_KINDS',
    'make_phantom_case', 'write_phantom_dataset', 'phantom_case_names'
]

BTCV_CASE_IDS = tuple(list(range(1, 11)) + list(range(21, 41)))
BTCV_LABELS = ('background', 'spleen', 'right kidney', 'left kidney',
               'gallbladder', 'esophagus', 'liver', 'stomach', 'aorta',
               'inferior vena cava', 'portal and splenic vein', 'pancreas',
               'right adrenal gland', 'left adrenal gland')
ABDOMEN1K_LABELS = ('background', 'liver', 'kidney', 'spleen', 'pancreas')

#: Deliberately broken inputs ``write_phantom_dataset(broken=...)`` can make.
BROKEN_KINDS = ('truncated', 'shape_mismatch', 'affine_mismatch',
                'float_labels', 'unknown_labels')

# Organ blobs in normalised canonical coordinates: u in [-1, 1] along x
# (+ = patient right), v along y (+ = anterior), w along z (+ = superior).
# name: (center (u, v, w), radii (u, v, w), HU, btcv id, abdomen1k id)
_ORGANS = [
    ('spine', (0.0, -0.52, 0.0), (0.13, 0.12, 2.0), 700., 0, 0),
    ('liver', (0.45, 0.05, 0.35), (0.32, 0.32, 0.55), 60., 6, 1),
    ('spleen', (-0.52, -0.15, 0.4), (0.15, 0.17, 0.3), 50., 1, 3),
    ('right kidney', (0.36, -0.33, -0.15), (0.12, 0.15, 0.35), 150., 2, 2),
    ('left kidney', (-0.36, -0.33, -0.1), (0.12, 0.15, 0.35), 150., 3, 2),
    ('gallbladder', (0.3, 0.3, 0.05), (0.08, 0.08, 0.15), 20., 4, 0),
    ('esophagus', (-0.05, -0.22, 0.8), (0.05, 0.05, 0.3), 40., 5, 0),
    ('stomach', (-0.3, 0.28, 0.45), (0.2, 0.14, 0.25), 30., 7, 0),
    ('aorta', (-0.06, -0.3, 0.0), (0.07, 0.07, 2.0), 200., 8, 0),
    ('inferior vena cava', (0.12, -0.28, 0.0), (0.07, 0.06, 2.0), 150., 9,
     0),
    ('pancreas', (-0.05, 0.05, 0.05), (0.3, 0.07, 0.12), 90., 11, 4),
    ('portal and splenic vein', (0.0, 0.0, 0.2), (0.25, 0.05, 0.08), 170.,
     10, 0),
    ('right adrenal gland', (0.25, -0.3, 0.5), (0.05, 0.05, 0.1), 30., 12, 0),
    ('left adrenal gland', (-0.25, -0.3, 0.5), (0.05, 0.05, 0.1), 30., 13, 0),
]

_AXCODES = [('L', 'P', 'S'), ('R', 'A', 'S'), ('L', 'A', 'S'),
            ('R', 'P', 'I'), ('P', 'L', 'S'), ('A', 'R', 'I'),
            ('L', 'S', 'P')]
# (slope, inter, pad HU outside the FOV or None)
_SCALINGS = [(1.0, -1024.0, None), (1.0, 0.0, -2048.0),
             (0.5, -1024.0, -3024.0), (1.0, -1024.0, -2048.0),
             (2.0, 0.0, None)]


def _case_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(index), 20150901])


def make_phantom_case(seed: int,
                      layout: str = 'btcv',
                      shape: Sequence[int] = (64, 64, 12),
                      index: int = 0,
                      axcodes: Optional[Sequence[str]] = None,
                      scaling: Optional[Tuple[float, float,
                                              Optional[float]]] = None,
                      vary: bool = True,
                      air_slices: Optional[int] = None,
                      noise_hu: float = 8.0) -> Dict:
    """Build one phantom volume (see module docstring for the returned dict).

    Args:
        seed, index: the case is a deterministic function of both.
        layout: 'btcv' (ids 0..13) or 'abdomen1k' (ids 0..4).
        shape: base canonical shape (X, Y, Z); with ``vary`` the in-plane
            size changes by -8/0/+8 voxels and Z by 0..3 per case.
        axcodes: native orientation (default: chosen per case).
        scaling: (slope, inter, pad_hu) (default: chosen per case).
        air_slices: number of most-superior canonical slices without body
            (default 1 for abdomen1k, 0 for btcv).
        noise_hu: std of the Gaussian noise added inside the body.
    """
    if layout not in ('btcv', 'abdomen1k'):
        raise ValueError(f'unknown layout {layout!r}')
    rng = _case_rng(seed, index)
    nx, ny, nz = (int(s) for s in shape)
    if vary:
        nx += int(rng.choice([-8, 0, 8]))
        ny += int(rng.choice([-8, 0, 8]))
        nz += int(rng.integers(0, 4))
    if axcodes is None:
        axcodes = _AXCODES[int(rng.integers(len(_AXCODES)))] if vary \
            else ('R', 'A', 'S')
    if scaling is None:
        scaling = _SCALINGS[int(rng.integers(len(_SCALINGS)))] if vary \
            else _SCALINGS[0]
    slope, inter, pad_hu = scaling
    if air_slices is None:
        air_slices = 1 if layout == 'abdomen1k' else 0
    sxy = round(float(rng.uniform(0.6, 1.0)), 3) if vary else 0.8
    sz = float(rng.choice([2.5, 3.0, 5.0])) if vary else 3.0
    spacing = (sxy, sxy, sz)

    # normalised coordinate grids (voxel centres)
    u = (np.arange(nx) + 0.5) / nx * 2 - 1
    v = (np.arange(ny) + 0.5) / ny * 2 - 1
    w = (np.arange(nz) + 0.5) / nz * 2 - 1
    U, V, W = np.meshgrid(u, v, w, indexing='ij')

    hu = np.full((nx, ny, nz), -1000.0)
    label = np.zeros((nx, ny, nz), np.uint8)
    body = (U / 0.88)**2 + ((V + 0.05) / 0.68)**2 <= 1
    if air_slices:
        body[:, :, nz - air_slices:] = False
    hu[body] = 40.0
    id_col = 4 if layout == 'btcv' else 5
    min_r = (2.0 / nx, 2.0 / ny, 1.2 / nz)  # every organ covers >= 1 voxel
    for organ in _ORGANS:
        (cu, cv, cw), radii = organ[1], organ[2]
        cu, cv, cw = (c + float(rng.uniform(-0.03, 0.03))
                      for c in (cu, cv, cw))
        ru, rv, rw = (max(r, m) for r, m in zip(radii, min_r))
        blob = ((U - cu) / ru)**2 + ((V - cv) / rv)**2 + \
            ((W - cw) / rw)**2 <= 1
        blob &= body
        hu[blob] = organ[3]
        if organ[id_col]:
            label[blob] = organ[id_col]
    hu[body] += rng.normal(0, noise_hu, size=int(body.sum()))
    hu[~body] += rng.normal(0, 4.0, size=int((~body).sum()))
    if pad_hu is not None:  # circular scanner field of view
        fov = U**2 + V**2 > 1.0
        hu[fov & ~body] = pad_hu
    raw = np.clip(np.rint((hu - inter) / slope), -32768, 32767)
    raw = raw.astype(np.int16)
    hu = raw.astype(np.float64) * slope + inter

    canonical_affine = np.diag([spacing[0], spacing[1], spacing[2], 1.0])
    canonical_affine[:3, 3] = [
        -spacing[0] * nx / 2, -spacing[1] * ny / 2,
        float(rng.uniform(-300, -100)) if vary else -200.0
    ]
    # native orientation: canonical -> axcodes
    transform = ornt_transform(axcodes2ornt(('R', 'A', 'S')),
                               axcodes2ornt(tuple(axcodes)))
    data = apply_orientation(raw, transform)
    label_data = apply_orientation(label, transform)
    affine = canonical_affine @ inv_ornt_aff(transform, raw.shape)
    return dict(
        hu=hu,
        label=label,
        canonical_affine=canonical_affine,
        data=np.ascontiguousarray(data),
        label_data=np.ascontiguousarray(label_data),
        affine=affine,
        axcodes=tuple(axcodes),
        slope=slope,
        inter=inter,
        pad_hu=pad_hu,
        spacing=spacing)


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
