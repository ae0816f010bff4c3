"""Anatomy of the CT phantoms: what is painted where, then the image.

Used by :mod:`medssl.datasets.phantoms`, which documents the latent factors
(drawn by :func:`.phantom_factors.sample_factors`) and adds the storage
side (int16, orientation, FOV padding). :func:`render_anatomy` paints one
case on a :class:`.phantom_canvas.Canvas` (its frame: normalised ``u``,
``v`` and the anatomical height ``s``). Organ positions are given relative
to the body ellipse (x, y in units of its half-axes), organ sizes in
normalised units scaled by the body and organ size factors.

Shapes: organs are deformed ellipsoids or tubes (chains of capsules, for
vessels, pancreas, bowel and spine), rotated, jittered and scaled per case,
painted in an anatomical order so that they touch and occlude plausibly.
Intensities: per-tissue HU = native + arterial gain * a + venous gain * p +
case jitter, so the contrast phase (a, p) shifts all organs and organ HU
ranges overlap. Texture: per-organ amplitude times a Gaussian-filtered
noise field, then a partial-volume blur (stronger along z) and white
scanner noise.
"""
from typing import Dict, Sequence, Tuple

import numpy as np
from scipy import ndimage

from .phantom_canvas import Canvas
from .phantom_factors import BLOBS, TISSUE_HU, TUBES

__all__ = ['render_anatomy']


def _body(cv: Canvas) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Body distance ``db`` (1 = skin), polar angle; paints fat/muscle/table.
    Returns (db, theta, cavity mask)."""
    f = cv.f
    U, V, S = cv.u[:, None, None], cv.v[None, :, None], cv.s[None, None, :]
    rx = f['body_rx'] * (1 + f['body_taper'] * S)
    x, y = (U - f['body_dx']) / rx, (V - f['body_dy']) / f['body_ry']
    theta = np.arctan2(y, x)
    ph = cv.rng.uniform(0, 2 * np.pi, 2)
    rho = 1 + f['body_irregularity'] * (np.cos(2 * theta + ph[0]) +
                                        .5 * np.cos(3 * theta + ph[1] + S))
    rho = rho - .08 * np.clip(-y, 0, None)**4  # flatter back (supine)
    db = np.sqrt(x * x + y * y) / rho
    full = (slice(None), ) * 3
    inner = 1 - f['fat_sc']
    # abdominal wall muscles: thick anteriorly (rectus), thin laterally
    cav_edge = inner - f['muscle'] * (.4 + .9 * np.abs(np.sin(theta)))
    cv.paint(full, np.broadcast_to(db <= 1, cv.shape), cv.tissue_hu('fat'),
             tissue='fat')
    cv.paint(full, (db <= inner) & (db > cav_edge), cv.tissue_hu('muscle'),
             tissue='muscle')
    cavity = db <= cav_edge
    cv.paint(full, cavity, cv.tissue_hu('fat') + 10, tissue='fat')
    # scanner table: a curved plate below the back
    vt = f['body_dy'] - f['body_ry'] - f['table_gap'] + .1 * U**2
    plate = (V <= vt) & (V > vt - .03) & (np.abs(U) < .8)
    cv.paint(full, np.broadcast_to(plate, cv.shape), cv.tissue_hu('table'))
    return db, theta, cavity


def _muscles(cv: Canvas, body: np.ndarray) -> None:
    """Paraspinal muscles and the psoas (which grows inferiorly)."""
    k, muscle = cv.size, cv.tissue_hu('muscle')
    for side in (1, -1):
        sl, q = cv.ellipsoid((*cv.xy(.2 * side, -.75), 0.),
                             (.14 * k, .13 * k, 5.))
        cv.paint(sl, q <= 1, muscle, tissue='muscle', within=body)
        sl, q = cv.tube([(*cv.xy(.17 * side, -.34), .3),
                         (*cv.xy(.22 * side, -.3), -1.4)],
                        (.02 * k, .09 * k))
        cv.paint(sl, q <= 1, muscle, tissue='muscle', within=body)


def _thorax_pelvis(cv: Canvas, body: np.ndarray) -> None:
    """Lung bases and heart above ``lung_low``; iliac wings and bladder below
    ``pelvis_high`` (unlabelled; organs painted later occlude them)."""
    f, k, lo, hi = cv.f, cv.size, cv.f['lung_low'], cv.f['pelvis_high']
    for side in (1, -1):
        sl, q = cv.ellipsoid((*cv.xy(.48 * side, -.2), lo + .6),
                             (.3 * k, .42 * k, .6), 0, f['shape_irregularity'])
        cv.paint(sl, q <= 1, cv.tissue_hu('lung'), tissue='lung',
                 within=body)
        sl, q = cv.ellipsoid((*cv.xy(.6 * side, -.2), hi - .5),
                             (.05 * k, .32 * k, .5), 35 * side)
        cv.paint(sl, q <= 1, np.where(q > .75, f['bone_hu'] + 450,
                                      f['bone_hu']), tissue='bone',
                 within=body)
    sl, q = cv.ellipsoid((*cv.xy(-.1, .3), lo + .55), (.3 * k, .3 * k, .4))
    cv.paint(sl, q <= 1, cv.tissue_hu('heart'), tissue='heart', within=body)
    sl, q = cv.ellipsoid((*cv.xy(0, .3), hi - .6), (.2 * k, .15 * k, .3))
    cv.paint(sl, q <= 1, cv.tissue_hu('bladder'), tissue='bladder',
             within=body)


def _spine_and_ribs(cv: Canvas, db: np.ndarray, theta: np.ndarray) -> None:
    f, k = cv.f, cv.size
    period, phase = 4.5 * cv.rng.uniform(.9, 1.1), cv.rng.uniform(0, 1)
    sl, q = cv.tube([(*cv.xy(0, -.42), -1.4), (*cv.xy(0, -.42), 1.4)],
                    (.1 * k, .1 * k))
    # vertebral bodies: cancellous core, cortical rim; discs between them
    disc = ((cv.s[sl[2]] * period + phase) % 1 < .18)[None, None, :]
    bone = np.where(q > .78, f['bone_hu'] + 450, f['bone_hu'])
    bone = np.where(disc, TISSUE_HU['disc'][0], bone)
    cv.paint(sl, q <= 1, bone, tissue='bone')
    sl, q = cv.tube([(*cv.xy(0, -.66), -1.4), (*cv.xy(0, -.66), 1.4)],
                    (.045 * k, .045 * k))
    cv.paint(sl, q <= 1, cv.tissue_hu('csf'), tissue='csf')
    sl, q = cv.ellipsoid((*cv.xy(0, -.82), 0.), (.04 * k, .09 * k, 5.))
    cv.paint(sl, q <= 1, f['bone_hu'] + 300, tissue='bone')
    # ribs: partial rings in the muscle wall, above rib_low, arcs that wind
    # around the body along s (ribs run obliquely), none at the midlines
    ring = np.abs(db - (1 - f['fat_sc'] - .5 * f['muscle'])) < max(
        .022, .6 * cv.min_r / f['body_ry'])
    arc = ((cv.s[None, None, :] * 3.2 + theta / np.pi * 1.5 + phase) % 1
           < .4) & (np.abs(np.abs(theta) - np.pi / 2) > .5)
    ribs = ring & arc & (cv.s > f['rib_low'])[None, None, :]
    cv.paint((slice(None), ) * 3, ribs, f['bone_hu'] + 350, tissue='cortex')


def _bowel(cv: Canvas, cavity: np.ndarray) -> None:
    """Small-bowel loops and the colon: walls, gas / fluid / stool / oral
    contrast content (unlabelled)."""
    f, rng, k = cv.f, cv.rng, cv.size

    def content():
        r = rng.random()
        if r < f['bowel_gas']:
            return -1000.
        if f['oral_contrast'] and r < f['bowel_gas'] + .4:
            return float(rng.uniform(150, 400))
        return float(rng.uniform(-60, 25))  # fluid / stool

    wall = cv.tissue_hu('bowel')
    loops = []
    for _ in range(f['bowel_loops']):  # short random walks
        c = np.array([*cv.xy(rng.uniform(-.55, .55), rng.uniform(-.1, .6)),
                      rng.uniform(-1.4, .1)])
        pts = np.cumsum([c] + [rng.normal(0, .1, 3) for _ in range(3)], 0)
        loops.append((pts, [rng.uniform(.035, .07) * k] * 4))
    colon = TUBES['colon']
    loops.append(([(*cv.xy(x, y, .03), s) for x, y, s in colon[2]],
                  [r * k for r in colon[3]]))
    for pts, radii in loops:
        sl, q = cv.tube(pts, radii)
        cv.paint(sl, q <= 1, wall, tissue='bowel', within=cavity)
        cv.paint(sl, q <= .7, content(), tissue='fat', within=cavity)


def _organs(cv: Canvas, cavity: np.ndarray) -> None:
    f, rng, k = cv.f, cv.rng, cv.size
    irr, jit = f['shape_irregularity'], f['organ_jitter']
    hu = {t: cv.tissue_hu(t) for t in TISSUE_HU}

    def blob(name):
        tissue, lid, c, r, ang = BLOBS[name]
        c = (*cv.xy(c[0], c[1], jit), c[2] + rng.uniform(-jit, jit) * 2)
        size = [ri * k * (rng.uniform(.88, 1.12) if jit else 1.) for ri in r]
        ang += rng.uniform(-15, 15) if jit else 0.
        sl, q = cv.ellipsoid(c, size[:2] + [r[2] * f['organ_scale']], ang,
                             irr)
        cv.centers.setdefault(lid, c)
        return sl, q, tissue, lid

    def tube(name):
        tissue, lid, pts, radii = TUBES[name]
        pts = [(*cv.xy(x, y, jit / 2), s) for x, y, s in pts]
        sl, q = cv.tube(pts, [r * k for r in radii])
        cv.centers.setdefault(lid, pts[len(pts) // 2])
        return sl, q, tissue, lid

    for name in ('liver_r', 'liver_l', 'spleen'):
        sl, q, t, lid = blob(name)
        cv.paint(sl, q <= 1, hu[t], lid, t, cavity)
    c6 = np.array(cv.centers[6])
    for _ in range(f['liver_lesions']):  # hypodense lesions, still liver
        c = c6 + rng.uniform(-.15, .15, 3) * [1, 1, 2]
        sl, q = cv.ellipsoid(c, [rng.uniform(.025, .07)] * 3)
        cv.paint(sl, (q <= 1) & (cv.lab[sl] == 6), rng.uniform(0, 40), 6,
                 'liver')
    for name in ('stomach_f', 'stomach_b'):  # wall, content, gas on top
        sl, q, t, lid = blob(name)
        v = cv.v[sl[1]][None, :, None]
        lumen = np.where(v > cv.centers[7][1] + .2 * (1 - 4 * f[
            'stomach_gas']), -1000., f['stomach_fill'])
        cv.paint(sl, q <= 1, np.where(q > .8, hu[t], lumen), lid, t, cavity)
    for name in ('kidney_r', 'kidney_l'):  # cortex, medulla, sinus fat
        sl, q, t, lid = blob(name)
        cv.paint(sl, q <= 1, np.where(q < .6, hu['medulla'], hu[t]), lid, t,
                 cavity)
        side = 1 if name == 'kidney_r' else -1
        c = cv.centers[lid]
        sl, q = cv.ellipsoid((c[0] - side * .06 * k, c[1] + .02, c[2]),
                             (.035 * k, .05 * k, .18))
        cv.paint(sl, q <= 1, hu['fat'], 0, 'fat', cavity)
    sl, q, t, lid = blob('gallbladder')
    cv.paint(sl, q <= 1, hu[t], lid, t, cavity)
    sl, q, t, lid = tube('pancreas')
    cv.paint(sl, q <= 1, hu[t], lid, t, cavity)
    for name in ('adrenal_r', 'adrenal_l'):
        sl, q, t, lid = blob(name)
        cv.paint(sl, q <= 1, hu[t], lid, t, cavity)
    for name in ('portal', 'splenic', 'ivc', 'aorta', 'iliac_r', 'iliac_l',
                 'esophagus'):
        sl, q, t, lid = tube(name)
        cv.paint(sl, q <= 1, hu[t], lid, t, cavity)


def render_anatomy(shape: Sequence[int], f: Dict, rng: np.random.Generator,
                   air_slices: int = 0, labels: Sequence[int] = ()
                   ) -> Tuple[np.ndarray, np.ndarray]:
    """Canonical float HU volume and BTCV-id label volume of one case.

    ``air_slices`` most-superior slices are pure air (no body, no table);
    every id in ``labels`` is present (a voxel at its centre if occluded).
    """
    cv = Canvas(shape, f, rng)
    db, theta, cavity = _body(cv)
    if air_slices:
        cavity[:, :, shape[2] - air_slices:] = False
    if f['ascites']:  # free fluid along the inner abdominal wall
        edge = 1 - f['fat_sc'] - f['muscle']
        cv.paint((slice(None), ) * 3, cavity & (db > edge - .08), 8.,
                 tissue='csf')
    _muscles(cv, db <= 1)
    _thorax_pelvis(cv, db <= 1 - f['fat_sc'] - f['muscle'])
    _bowel(cv, cavity)
    _organs(cv, cavity)
    _spine_and_ribs(cv, db, theta)
    nz = shape[2] - air_slices
    for lid in labels:
        if lid and not (cv.lab[:, :, :nz] == lid).any():
            c = cv.centers[lid]
            i, j, z = (int(np.abs(ax - x).argmin())
                       for ax, x in zip((cv.u, cv.v, cv.s), c))
            z = min(z, nz - 1)
            cv.lab[i, j, z], cv.hu[i, j, z] = lid, cv.tissue_hu('muscle')
    # correlated texture, partial volume (slice thickness) and scanner noise
    sig = f['texture_sigma']
    tex = ndimage.gaussian_filter(rng.standard_normal(shape),
                                  (sig, sig, sig / 2), mode='wrap')
    hu = cv.hu + cv.amp * tex / (tex.std() + 1e-12)
    hu = ndimage.gaussian_filter(hu, (f['blur_xy'], f['blur_xy'],
                                      f['blur_z']), mode='nearest')
    hu += rng.normal(0, f['noise_hu'], shape)
    lab = cv.lab
    if air_slices:
        hu[:, :, -air_slices:] = -1000 + rng.normal(
            0, f['noise_hu'], hu[:, :, -air_slices:].shape)
        lab[:, :, -air_slices:] = 0
    return hu, lab

