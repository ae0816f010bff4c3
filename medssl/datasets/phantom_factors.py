"""Latent factors of the CT phantoms and the tissue / organ tables.

:func:`sample_factors` draws one case's factors (documented with their
ranges in :mod:`medssl.datasets.phantoms`); :mod:`.phantom_anatomy` renders
them. Positions are relative to the body ellipse (x, y in units of its
half-axes; x + = patient right, y + = anterior), ``s`` is the anatomical
height (+ = superior; ~+1 liver dome, ~-1 iliac crest), sizes are in
normalised FOV units (the FOV spans [-1, 1]) before the case's scaling.
"""
from typing import Dict

import numpy as np

__all__ = ['TISSUE_HU', 'PHASES', 'BLOBS', 'TUBES', 'sample_factors']

#: tissue: (native HU, arterial gain, portal-venous gain, texture weight).
#: A tissue's HU is ``native + a * arterial + p * venous + jitter``.
TISSUE_HU = dict(
    liver=(58, 12, 50, 1.0), spleen=(48, 75, 65, 1.0),
    kidney=(32, 160, 125, 0.8), medulla=(30, 30, 125, 0.8),
    gallbladder=(12, 0, 0, 0.3), esophagus=(40, 15, 35, 0.7),
    stomach=(38, 35, 45, 0.7), aorta=(42, 280, 60, 0.3),
    ivc=(40, 10, 115, 0.3), portal=(42, 45, 150, 0.3),
    pancreas=(42, 70, 55, 1.3), adrenal=(30, 35, 40, 0.8),
    muscle=(52, 8, 15, 0.8), fat=(-95, 0, 0, 0.8), bowel=(38, 30, 35, 0.8),
    csf=(12, 0, 0, 0.3), bone=(230, 0, 0, 1.5), cortex=(750, 0, 0, 0.5),
    disc=(80, 0, 10, 0.5), table=(100, 0, 0, 0.0), lung=(-850, 0, 0, 1.5),
    heart=(40, 200, 110, 0.4), bladder=(8, 0, 0, 0.3))
#: contrast phases: name -> ((a_lo, a_hi), (p_lo, p_hi)) enhancement ranges
PHASES = dict(native=((0., 0.), (0., 0.)), arterial=((.8, 1.), (.1, .3)),
              portal=((.3, .5), (.8, 1.)), delayed=((.1, .2), (.4, .6)))
# AbdomenCT-1K merges centres and phases; BTCV is portal venous only
_PHASE_P = dict(native=.2, arterial=.25, portal=.4, delayed=.15)

# Organs as deformed ellipsoids: (tissue, BTCV id, centre (x, y, s) with x, y
# relative to the body half-axes, radii (u, v, s), in-plane angle in deg)
BLOBS = dict(
    liver_r=('liver', 6, (.40, .02, .45), (.36, .42, .62), 10),
    liver_l=('liver', 6, (.0, .35, .6), (.28, .16, .32), -15),
    spleen=('spleen', 1, (-.62, -.28, .45), (.12, .21, .32), -35),
    stomach_f=('stomach', 7, (-.38, .05, .62), (.17, .19, .3), 0),
    stomach_b=('stomach', 7, (-.22, .38, .3), (.17, .12, .3), 30),
    kidney_r=('kidney', 2, (.36, -.42, -.25), (.09, .14, .36), 30),
    kidney_l=('kidney', 3, (-.36, -.40, -.1), (.09, .14, .36), -30),
    gallbladder=('gallbladder', 4, (.28, .38, -.05), (.065, .075, .2), 20),
    adrenal_r=('adrenal', 12, (.24, -.3, .42), (.03, .09, .15), 50),
    adrenal_l=('adrenal', 13, (-.24, -.3, .34), (.03, .09, .15), -50))
# Tubes: (tissue, BTCV id, points (x, y, s), radii per point)
TUBES = dict(
    pancreas=('pancreas', 11, [(.14, .12, -.08), (.02, .16, .04),
                               (-.22, .08, .12), (-.48, -.1, .22)],
              (.075, .055, .055, .045)),
    portal=('portal', 10, [(.26, .1, .28), (.04, .06, .06)], (.035, .035)),
    splenic=('portal', 10, [(.04, .06, .06), (-.22, 0., .12),
                            (-.5, -.16, .22)], (.028, .028, .028)),
    ivc=('ivc', 9, [(.14, -.17, -1.4), (.14, -.17, .2), (.18, -.1, .6),
                    (.18, -.05, 1.4)], (.05, .055, .055, .055)),
    aorta=('aorta', 8, [(-.06, -.2, -.75), (-.06, -.2, .6),
                        (-.04, -.24, 1.4)], (.05, .058, .06)),
    iliac_r=('aorta', 0, [(-.06, -.2, -.75), (.12, -.15, -1.4)], (.04, .035)),
    iliac_l=('aorta', 0, [(-.06, -.2, -.75), (-.24, -.15, -1.4)],
             (.04, .035)),
    esophagus=('esophagus', 5, [(-.04, -.14, 1.4), (-.1, -.05, .75),
                                (-.3, .02, .55)], (.035, .035, .035)),
    colon=('bowel', 0, [(.6, .05, -1.4), (.6, .1, .15), (0., .5, .05),
                        (-.62, .1, .35), (-.62, 0., -1.4)],
           (.075, .075, .07, .075, .075)))


def sample_factors(rng: np.random.Generator, layout: str,
                   vary: bool = True) -> Dict:
    """Draw the latent factors of one case (nominal values if not ``vary``).

    See :mod:`medssl.datasets.phantoms` for the list and ranges.
    """
    def uni(lo, hi, nominal=None):
        if vary:
            return float(rng.uniform(lo, hi))
        return float((lo + hi) / 2 if nominal is None else nominal)

    if layout == 'btcv' or not vary:
        phase = 'portal'
    else:
        names = list(_PHASE_P)
        phase = names[int(rng.choice(len(names), p=list(_PHASE_P.values())))]
    (a_lo, a_hi), (p_lo, p_hi) = PHASES[phase]
    f = dict(
        body_rx=uni(.72, .92), body_ry=uni(.52, .70), body_dx=uni(-.05, .05),
        body_dy=uni(-.1, 0.), body_taper=uni(-.06, .06),
        body_irregularity=uni(0., .05, 0.), fat_sc=uni(.03, .16),
        muscle=uni(.035, .07), z_center=uni(-.25, .25),
        z_extent=uni(.9, 1.3), organ_scale=uni(.85, 1.15),
        organ_jitter=uni(.02, .07, 0.), shape_irregularity=uni(.05, .25, 0.),
        phase=phase, arterial=uni(a_lo, a_hi), venous=uni(p_lo, p_hi),
        hu_offset=uni(-10, 10), hu_jitter=uni(5, 18, 0.),
        texture_hu=uni(3, 15), texture_sigma=uni(.7, 2.5),
        noise_hu=uni(4, 25, 10.), blur_xy=uni(.3, .8), blur_z=uni(.3, 1.2),
        bowel_loops=int(rng.integers(8, 25)) if vary else 16,
        bowel_gas=uni(.1, .7), oral_contrast=bool(rng.random() < .3)
        if vary else False, stomach_gas=uni(0., .5), stomach_fill=uni(0, 50),
        liver_lesions=int(rng.choice(4, p=[.55, .2, .15, .1])) if vary else 0,
        ascites=bool(rng.random() < .15) if vary else False,
        lung_low=uni(.6, .95), pelvis_high=uni(-1.1, -.8),
        rib_low=uni(-.4, 0.), bone_hu=uni(150, 350), table_gap=uni(.02, .08))
    return f


