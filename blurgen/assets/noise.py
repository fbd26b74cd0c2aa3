"""Fractal noise for the procedural demo assets, drawn from a caller's numpy Generator.

Noise is made by shaping white noise in the Fourier domain (power ~ 1/f^beta): one call, any
size, and periodic by construction, so textures tile without seams across UV wrap-arounds.
Larger ``beta`` gives smoother noise (2: Brownian ridgelines, 3: soft clouds).
"""

from __future__ import annotations

import numpy as np


def _normalise(x: np.ndarray) -> np.ndarray:
    """Scale to zero mean, unit standard deviation (keeps relative amplitude across seeds)."""
    std = x.std()
    return (x - x.mean()) / std if std > 0 else np.zeros_like(x)


def fractal_noise(rng: np.random.Generator, shape: tuple[int, ...], beta: float = 2.0,
                  stretch: tuple[float, ...] | None = None, cutoff: float = 0.0) -> np.ndarray:
    """Periodic 1/f^beta noise of ``shape`` (1D or 2D), zero mean, unit std, float32.

    ``stretch`` scales the frequency axes (2.0 on an axis makes features half as long along it,
    so stretch=(3, 1) gives horizontally elongated clouds); ``cutoff`` removes frequencies below
    it (cycles per image), taking out the large-scale drift.
    """
    white = rng.standard_normal(shape)
    spectrum = np.fft.rfftn(white)  # real input: half the spectrum, half the work
    axes = [np.fft.fftfreq(n) * n for n in shape[:-1]] + [np.fft.rfftfreq(shape[-1]) * shape[-1]]
    freqs = np.meshgrid(*axes, indexing="ij")
    stretch = stretch or (1.0,) * len(shape)
    radius = np.sqrt(sum((f * s) ** 2 for f, s in zip(freqs, stretch)))
    with np.errstate(divide="ignore"):
        gain = np.where(radius > max(cutoff, 0.0), radius ** (-beta / 2.0), 0.0)
    return _normalise(np.fft.irfftn(spectrum * gain, s=shape)).astype(np.float32)


def smoothstep(edge0: float, edge1: float, x: np.ndarray) -> np.ndarray:
    """0 below ``edge0``, 1 above ``edge1``, a smooth cubic between."""
    t = np.clip((x - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)
