"""Procedural textures for the demo objects: a random palette and one pattern family.

Families: stripes, checks, dots, noise, gradient, plaid. Every pattern is periodic in u and v
(integer frequencies, Fourier noise), so a texture wraps around a cylinder's UV seam without a
visible edge. Each object draws its own base hue, so objects of one category look different.
"""

from __future__ import annotations

import colorsys

import numpy as np

from blurgen.assets.noise import fractal_noise, smoothstep

FAMILIES = ("stripes", "checks", "dots", "noise", "gradient", "plaid")


def palette(rng: np.random.Generator, n: int = 3) -> tuple[np.ndarray, float]:
    """``n`` RGB colours in [0, 1] around a random base hue; returns them and the hue."""
    hue = float(rng.uniform(0.0, 1.0))
    scheme = rng.choice(["analogous", "complementary", "triadic"])
    steps = {"analogous": 0.08, "complementary": 0.5, "triadic": 1.0 / 3.0}[str(scheme)]
    colours = []
    for i in range(n):
        h = (hue + i * steps + rng.uniform(-0.03, 0.03)) % 1.0
        s = rng.uniform(0.45, 0.95)
        v = rng.uniform(0.35, 0.95) if i else rng.uniform(0.55, 0.95)
        colours.append(colorsys.hsv_to_rgb(h, s, v))
    return np.array(colours, np.float32), hue


def _mix(c0: np.ndarray, c1: np.ndarray, w: np.ndarray) -> np.ndarray:
    return c0[None, None, :] * (1.0 - w[..., None]) + c1[None, None, :] * w[..., None]


def _ramp(colours: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Map t in [0, 1] through the palette as a piecewise-linear colour ramp."""
    t = np.clip(t, 0.0, 1.0) * (len(colours) - 1)
    i = np.minimum(t.astype(int), len(colours) - 2)
    f = (t - i)[..., None]
    return colours[i] * (1.0 - f) + colours[i + 1] * f


def make_texture(rng: np.random.Generator, size: int, family: str | None = None) -> tuple[np.ndarray, str, float]:
    """A ``size`` x ``size`` RGB uint8 texture; returns (image, family, base hue)."""
    family = family or str(rng.choice(FAMILIES))
    colours, hue = palette(rng, 3)
    c0, c1, c2 = colours
    g = (np.arange(size, dtype=np.float32) + 0.5) / size
    u, v = np.meshgrid(g, g)  # v runs down the image rows
    sharp = rng.uniform(4.0, 14.0)
    if family == "stripes":
        if rng.random() < 0.4:  # stripes around a cylinder (along u) ...
            a, b = int(rng.integers(3, 12)), 0
        else:  # ... or across it, possibly diagonal
            a, b = int(rng.integers(0, 6)), int(rng.integers(2, 10))
        w = 0.5 + 0.5 * np.tanh(sharp * np.sin(2 * np.pi * (a * u + b * v)))
        image = _mix(c0, c1, w)
    elif family == "checks":
        n = int(rng.integers(3, 10))
        w = 0.5 + 0.5 * np.tanh(sharp * np.sin(2 * np.pi * n * u) * np.sin(2 * np.pi * n * v))
        image = _mix(c0, c1, w)
    elif family == "dots":
        n = int(rng.integers(4, 12))
        du, dv = (n * u) % 1.0 - 0.5, (n * v + 0.5 * (np.floor(n * u) % 2)) % 1.0 - 0.5
        radius = rng.uniform(0.18, 0.38)
        w = 1.0 - smoothstep(radius - 0.04, radius + 0.04, np.sqrt(du ** 2 + dv ** 2))
        image = _mix(c0, c1, w)
    elif family == "noise":
        n = fractal_noise(rng, (size, size), beta=rng.uniform(2.0, 3.2), cutoff=1.0)
        image = _ramp(colours, 0.5 + 0.25 * n)
    elif family == "gradient":
        ku, kv = int(rng.integers(0, 3)), int(rng.integers(1, 4))
        image = _ramp(colours, 0.5 - 0.5 * np.cos(2 * np.pi * (ku * u + kv * v)))
    elif family == "plaid":
        n, m = int(rng.integers(2, 7)), int(rng.integers(2, 7))
        wu = 0.5 + 0.5 * np.tanh(sharp * np.sin(2 * np.pi * n * u))
        wv = 0.5 + 0.5 * np.tanh(sharp * np.sin(2 * np.pi * m * v))
        image = _mix(c0, c1, wu) * (1.0 - 0.5 * wv[..., None]) + c2[None, None, :] * 0.5 * wv[..., None]
    else:
        raise ValueError(f"unknown texture family {family!r}; known: {', '.join(FAMILIES)}")
    # Fine grain so surfaces do not look like flat vector art under shading.
    grain = fractal_noise(rng, (size, size), beta=1.0)
    image = image * (1.0 + 0.04 * grain[..., None])
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8), family, hue
