"""One CT-like phantom case in the BTCV or AbdomenCT-1K label layout.

:func:`make_phantom_case` draws a case's latent factors, renders its
anatomy, stores it as int16 with a per-case scaling, FOV padding and native
orientation; :mod:`.phantom_writer` writes cases as a dataset's raw NIfTI
files.

Everything is deterministic given ``seed`` (and the case ``index``). A
phantom is built in the canonical RAS+ frame (array ``vol[x, y, z]``: index
``x`` increases towards the patient's Right, ``y`` towards Anterior, ``z``
towards Superior) and then stored in a per-case *native* orientation with a
non-identity affine, so converters must reorient it back.

The anatomy (:mod:`.phantom_anatomy` on a :mod:`.phantom_canvas`, tables
in :mod:`.phantom_factors`) is a hard, CT-like proxy: 13 labelled organs
plus unlabelled muscles, fat, bones, bowel, lungs, heart and pelvis, every
one varying per case, so that a randomly initialised network is not already
a good embedding and variation lives in many factors. Latent factors of a
case (``factors`` in the returned dict; ranges, nominal value with
``vary=False`` in brackets):

- geometry: in-plane size +-8 voxels, +0..3 slices; spacing 0.6-1.0 mm
  in-plane, slices 2.5 / 3 / 5 mm; orientation (7 axcodes); int16 scaling
  and FOV padding (None / -2048 / -3024 HU, 5 variants);
- body: half-axes ``body_rx`` 0.72-0.92, ``body_ry`` 0.52-0.70 (of the
  FOV), centre shift ``body_dx`` +-0.05, ``body_dy`` -0.1-0, taper along z
  +-6 %, outline irregularity 0-0.05; subcutaneous fat ``fat_sc`` 3-16 %
  and abdominal-wall muscle ``muscle`` 3.5-7 % of the body radius; table
  ``table_gap`` 0.02-0.08 below the back;
- z coverage: anatomical height ``s = z_center + z_extent * w`` with
  ``z_center`` +-0.25, ``z_extent`` 0.9-1.3, so organs appear and
  disappear along z (lung bases above ``lung_low`` 0.6-0.95, ribs above
  ``rib_low`` -0.4-0, pelvis below ``pelvis_high`` -1.1 - -0.8; esophagus,
  adrenals, pancreas, kidneys, gallbladder in their own s ranges);
- organs: global size ``organ_scale`` 0.85-1.15 (times the body size),
  per-organ size x0.88-1.12 per axis, position jitter ``organ_jitter``
  0.02-0.07 (0) of the body half-axes, rotation +-15 deg (0), shape
  ``shape_irregularity`` 0.05-0.25 (0): radius modulated by harmonics 2-4
  of the in-plane angle, drifting along z; vessels, pancreas, bowel and
  spine are tubes whose centre and radius vary along z;
- intensity: contrast ``phase`` (BTCV: portal venous; AbdomenCT-1K: native
  20 %, arterial 25 %, portal 40 %, delayed 15 %) with enhancement
  ``arterial`` / ``venous`` in 0-1; tissue HU = native + gain_a * a +
  gain_v * p (``phantom_factors.TISSUE_HU``), + per-tissue jitter
  ``hu_jitter`` 5-18 HU (0) + ``hu_offset`` +-10 HU, so organ HU ranges
  overlap; bone density ``bone_hu`` 150-350 (cortex +450);
- content: ``bowel_loops`` 8-24 (16) with ``bowel_gas`` 0.1-0.7 of them
  air, ``oral_contrast`` (30 %, 150-400 HU), fluid/stool otherwise;
  ``stomach_gas`` 0-0.5 (air-fluid level), ``stomach_fill`` 0-50 HU;
  ``liver_lesions`` 0-3 (hypodense); ``ascites`` (15 %);
- texture and image: per-organ texture ``texture_hu`` 3-15 HU of a
  Gaussian-filtered noise field of ``texture_sigma`` 0.7-2.5 voxels;
  partial volume: Gaussian blur ``blur_xy`` 0.3-0.8 and ``blur_z`` 0.3-1.2
  voxels (labels stay sharp); white scanner noise ``noise_hu`` 4-25 HU (10).

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
  ``spacing`` (canonical order, mm), ``factors`` (the latent factors).

Label ids: BTCV 0..13 (see ``BTCV_LABELS``), AbdomenCT-1K 0..4
(background, liver, kidney, spleen, pancreas).
"""
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
from nibabel.orientations import (apply_orientation, axcodes2ornt,
                                  inv_ornt_aff, ornt_transform)

from .phantom_anatomy import render_anatomy
from .phantom_factors import sample_factors

__all__ = ['BTCV_LABELS', 'ABDOMEN1K_LABELS', 'make_phantom_case']

BTCV_LABELS = ('background', 'spleen', 'right kidney', 'left kidney',
               'gallbladder', 'esophagus', 'liver', 'stomach', 'aorta',
               'inferior vena cava', 'portal and splenic vein', 'pancreas',
               'right adrenal gland', 'left adrenal gland')
ABDOMEN1K_LABELS = ('background', 'liver', 'kidney', 'spleen', 'pancreas')

# BTCV id -> AbdomenCT-1K id (liver 1, kidneys 2, spleen 3, pancreas 4)
_A1K_OF_BTCV = [0, 3, 2, 2, 0, 0, 1, 0, 0, 0, 0, 4, 0, 0]

_AXCODES = [('L', 'P', 'S'), ('R', 'A', 'S'), ('L', 'A', 'S'),
            ('R', 'P', 'I'), ('P', 'L', 'S'), ('A', 'R', 'I'),
            ('L', 'S', 'P')]
# (slope, inter, pad HU outside the FOV or None)
_SCALINGS = [(1.0, -1024.0, None), (1.0, 0.0, -2048.0),
             (0.5, -1024.0, -3024.0), (1.0, -1024.0, -2048.0),
             (2.0, 0.0, None)]


def btcv_to_layout(labels: np.ndarray, mapping: List[int]) -> np.ndarray:
    """Map BTCV ids to another dataset's ids (``mapping[btcv_id]``)."""
    return np.asarray(mapping, np.uint8)[labels]


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
                      noise_hu: Optional[float] = None,
                      factors: Optional[Dict] = None) -> Dict:
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
        noise_hu: std (HU) of the white scanner noise; default: the
            case's ``noise_hu`` factor (4-25 HU).
        vary: False gives the nominal case: 64x64x12-style fixed geometry
            (RAS, slope 1 / inter -1024, 0.8x0.8x3 mm) and every latent
            factor at its nominal value (undeformed organs, portal venous
            phase); texture, noise and bowel loops still come from ``seed``.
        factors: overrides of latent factors (keys of the returned
            ``factors``), e.g. ``dict(phase='native', arterial=0.,
            venous=0.)``.
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

    overrides, factors = factors, sample_factors(rng, layout, vary)
    unknown = set(overrides or ()) - set(factors)
    if unknown:
        raise ValueError(f'unknown phantom factors {sorted(unknown)}')
    factors.update(overrides or {})
    if noise_hu is not None:
        factors['noise_hu'] = float(noise_hu)
    ids = range(len(BTCV_LABELS)) if layout == 'btcv' else (1, 2, 3, 6, 11)
    hu, label = render_anatomy((nx, ny, nz), factors, rng, air_slices, ids)
    if layout == 'abdomen1k':
        label = btcv_to_layout(label, _A1K_OF_BTCV)
    if pad_hu is not None:  # circular scanner field of view
        u = (np.arange(nx) + 0.5) / nx * 2 - 1
        v = (np.arange(ny) + 0.5) / ny * 2 - 1
        fov = u[:, None]**2 + v[None, :]**2 > 1.0
        hu[fov] = pad_hu
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
        spacing=spacing,
        factors=factors)
