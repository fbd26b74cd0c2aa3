"""Optical flow as colour with the Middlebury colour wheel (Baker et al., IJCV 2011).

Hue gives the direction, saturation the magnitude relative to ``max_magnitude``; flow is
(u, v) = (dx, dy) in pixels with x right and y down, the convention of every blurgen schema.
"""

from __future__ import annotations

import numpy as np

# Number of hues between the wheel's primaries, chosen by Baker et al. to be perceptually even:
# red-yellow, yellow-green, green-cyan, cyan-blue, blue-magenta, magenta-red.
_SEGMENTS = (("RY", 15), ("YG", 6), ("GC", 4), ("CB", 11), ("BM", 13), ("MR", 6))


def color_wheel() -> np.ndarray:
    """The 55 wheel colours as float RGB in [0, 1], shape (55, 3)."""
    ramps = []
    for (name, n) in _SEGMENTS:
        t = np.arange(n, dtype=np.float64) / n
        up, down, zero, one = t, 1.0 - t, np.zeros(n), np.ones(n)
        ramps.append({
            "RY": (one, up, zero), "YG": (down, one, zero), "GC": (zero, one, up),
            "CB": (zero, down, one), "BM": (up, zero, one), "MR": (one, zero, down),
        }[name])
    return np.concatenate([np.stack(r, axis=1) for r in ramps], axis=0)


def flow_to_rgb(flow: np.ndarray, max_magnitude: float | None = None,
                valid: np.ndarray | None = None) -> np.ndarray:
    """Colour an (H, W, 2) flow field; returns RGB uint8 (H, W, 3).

    ``max_magnitude`` defaults to the largest finite magnitude in the field; vectors longer than
    it are drawn darker (as in the reference code). Invalid pixels (``valid`` False, or
    non-finite flow) are black.
    """
    flow = np.asarray(flow, dtype=np.float64)
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must have shape (H, W, 2), got {flow.shape}")
    u, v = flow[..., 0], flow[..., 1]
    ok = np.isfinite(u) & np.isfinite(v)
    if valid is not None:
        ok &= np.asarray(valid, dtype=bool)
    u, v = np.where(ok, u, 0.0), np.where(ok, v, 0.0)
    magnitude = np.hypot(u, v)
    if max_magnitude is None:
        max_magnitude = float(magnitude.max()) if magnitude.size else 0.0
    radius = magnitude / max(max_magnitude, 1e-9)

    wheel = color_wheel()
    n = len(wheel)
    angle = np.arctan2(-v, -u) / np.pi  # in [-1, 1]
    position = (angle + 1.0) / 2.0 * (n - 1)
    k0 = np.floor(position).astype(np.int64)
    k1 = (k0 + 1) % n
    frac = (position - k0)[..., None]
    color = (1.0 - frac) * wheel[k0] + frac * wheel[k1]
    inside = (radius <= 1.0)[..., None]
    color = np.where(inside, 1.0 - radius[..., None] * (1.0 - color), color * 0.75)
    color[~ok] = 0.0
    return (np.clip(color, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
