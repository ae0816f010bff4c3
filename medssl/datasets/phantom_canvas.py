"""Painting canvas of the CT phantoms: frame, shape primitives, paint.

A :class:`Canvas` holds one case's canonical RAS+ volumes (HU, BTCV-id
labels, texture amplitude) on normalised voxel-centre coordinates ``u``
(x, + = patient right), ``v`` (y, + = anterior), both in [-1, 1] over the
field of view, and an *anatomical* height ``s`` (+ = superior; ~+1 liver
dome, ~-1 iliac crest) that a case maps onto its slices with
``s = z_center + z_extent * w``, ``w`` in [-1, 1]. It maps body-relative
positions (x, y in units of the body half-axes) to ``(u, v)``, draws a
tissue's HU for the case's contrast phase, gives the normalised radius of
deformed ellipsoids (a radius modulated by random low harmonics of the
in-plane angle whose phase drifts along ``s``) and of tubes (chains of
capsules), and paints HU / label / texture amplitude inside a mask.
:mod:`.phantom_anatomy` decides what is painted where.
"""
from typing import Dict, Sequence, Tuple

import numpy as np

from .phantom_factors import TISSUE_HU

__all__ = ['Canvas']


class Canvas:
    """Canonical HU / label / texture-amplitude volumes and paint helpers."""

    def __init__(self, shape: Sequence[int], f: Dict,
                 rng: np.random.Generator) -> None:
        nx, ny, nz = shape
        self.f, self.rng, self.shape = f, rng, tuple(shape)
        self.u = (np.arange(nx) + .5) / nx * 2 - 1
        self.v = (np.arange(ny) + .5) / ny * 2 - 1
        self.s = f['z_center'] + f['z_extent'] * (
            (np.arange(nz) + .5) / nz * 2 - 1)
        # every structure covers >= 1 voxel in-plane and ~half a slice in s
        self.min_r = max(2. / nx, 2. / ny)
        self.min_rs = 1.2 / nz * f['z_extent']
        self.hu = np.full(shape, -1000.)
        self.lab = np.zeros(shape, np.uint8)  # BTCV ids
        self.amp = np.zeros(shape)  # texture amplitude (HU)
        self.size = f['organ_scale'] * np.sqrt(
            f['body_rx'] * f['body_ry'] / (.82 * .61))
        self.centers: Dict[int, Tuple[float, float, float]] = {}

    def xy(self, x: float, y: float, jitter: float = 0.) -> Tuple:
        """Body-relative (x, y) -> normalised (u, v), with position jitter."""
        f = self.f
        if jitter:
            x, y = x + self.rng.uniform(-jitter, jitter), \
                y + self.rng.uniform(-jitter, jitter)
        s_mid = f['z_center']
        return (f['body_dx'] + x * f['body_rx'] * (1 + f['body_taper'] *
                                                   s_mid),
                f['body_dy'] + y * f['body_ry'])

    def tissue_hu(self, tissue: str) -> float:
        native, art, ven, _ = TISSUE_HU[tissue]
        f = self.f
        return (native + art * f['arterial'] + ven * f['venous'] +
                f['hu_offset'] + self.rng.normal(0, f['hu_jitter'] + 1e-9))

    def _box(self, lo: Sequence[float], hi: Sequence[float]) -> Tuple:
        out = []
        for ax, a, b in zip((self.u, self.v, self.s), lo, hi):
            i0, i1 = np.searchsorted(ax, a), np.searchsorted(ax, b, 'right')
            out.append(slice(int(i0), int(max(i0, i1))))
        return tuple(out)

    def _local(self, sl: Tuple) -> Tuple[np.ndarray, ...]:
        return (self.u[sl[0]][:, None, None], self.v[sl[1]][None, :, None],
                self.s[sl[2]][None, None, :])

    def ellipsoid(self, c: Sequence[float], r: Sequence[float],
                  angle: float = 0., irregular: float = 0.) -> Tuple:
        """Normalised radius q (<= 1 inside) of a deformed, rotated
        ellipsoid, in its bounding box ``sl``: returns (sl, q)."""
        ru, rv = max(r[0], self.min_r), max(r[1], self.min_r)
        rs = max(r[2], self.min_rs)
        harm = [(k, irregular / (k - 1) * self.rng.uniform(.3, 1),
                 self.rng.uniform(0, 2 * np.pi), self.rng.uniform(-2, 2))
                for k in (2, 3, 4)] if irregular else []
        grow = 1 + sum(h[1] for h in harm)
        ext = max(ru, rv) * grow
        sl = self._box((c[0] - ext, c[1] - ext, c[2] - rs * grow),
                       (c[0] + ext, c[1] + ext, c[2] + rs * grow))
        X, Y, S = self._local(sl)
        ca, sa = np.cos(np.deg2rad(angle)), np.sin(np.deg2rad(angle))
        a = (ca * (X - c[0]) + sa * (Y - c[1])) / ru
        b = (-sa * (X - c[0]) + ca * (Y - c[1])) / rv
        z = (S - c[2]) / rs
        q = np.sqrt(a * a + b * b + z * z)
        if harm:
            phi = np.arctan2(b, a)
            q = q / (1 + sum(A * np.cos(k * phi + ph + beta * z)
                             for k, A, ph, beta in harm))
        return sl, q

    def tube(self, pts: Sequence[Sequence[float]],
             radii: Sequence[float]) -> Tuple:
        """Chain of capsules through ``pts`` (u, v, s) with per-point radii
        (linearly interpolated); returns (sl, q) with q <= 1 inside."""
        p = np.asarray(pts, float)
        r = np.maximum(np.asarray(radii, float), self.min_r)
        kz = max(1., self.min_rs / r.min())  # stretch thin tubes along s
        ext = r.max()
        sl = self._box(p.min(0) - [ext, ext, ext * kz],
                       p.max(0) + [ext, ext, ext * kz])
        X, Y, S = self._local(sl)
        S = S / kz
        q = np.full(tuple(x.stop - x.start for x in sl), np.inf)
        for (p0, p1, r0, r1) in zip(p[:-1], p[1:], r[:-1], r[1:]):
            d = (p1 - p0) / [1, 1, kz]
            a = (X - p0[0], Y - p0[1], S - p0[2] / kz)
            t = np.clip((a[0] * d[0] + a[1] * d[1] + a[2] * d[2]) /
                        max(float(d @ d), 1e-12), 0, 1)
            dist = np.sqrt((a[0] - t * d[0])**2 + (a[1] - t * d[1])**2 +
                           (a[2] - t * d[2])**2)
            q = np.minimum(q, dist / (r0 + t * (r1 - r0)))
        return sl, q

    def paint(self, sl: Tuple, mask: np.ndarray, hu, label: int = 0,
              tissue: str = '', within: np.ndarray = None) -> None:
        """Set HU (scalar or per-voxel array on the box), label and texture
        amplitude on ``mask`` (box-local), optionally only ``within``."""
        if within is not None:
            mask = mask & within[sl]
        if not mask.any():
            return
        if np.ndim(hu):
            self.hu[sl][mask] = hu[mask]
        else:
            self.hu[sl][mask] = hu
        self.lab[sl][mask] = label
        weight = TISSUE_HU[tissue][3] if tissue else 0.
        self.amp[sl][mask] = weight * self.f['texture_hu']
