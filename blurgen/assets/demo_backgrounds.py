"""Procedural landscape photographs for the demo set.

A picture is painted back to front: a sky gradient with a sun glow and soft clouds; several
ridgelines of 1D fractal noise, far ones mountainous (rock, sometimes snow) and near ones
rolling hills, each mixed towards the haze colour by its distance (aerial perspective: farther
is lighter and bluer); sometimes a lake that reflects what lies above its shore; a textured
foreground of grass, sand or rock. Photographic finish: a slight blur, vignette and sensor grain.
Everything is drawn from one numpy Generator, so the same seed paints the same picture.
"""

from __future__ import annotations

import cv2
import numpy as np

from blurgen.assets.noise import fractal_noise, smoothstep

# Sky colours (zenith, horizon, sun) per light, in [0, 1] sRGB.
_LIGHTS = {
    "day": ((0.16, 0.36, 0.72), (0.72, 0.83, 0.93), (1.0, 0.97, 0.88)),
    "golden": ((0.22, 0.32, 0.58), (0.98, 0.74, 0.48), (1.0, 0.82, 0.55)),
    "overcast": ((0.50, 0.55, 0.62), (0.80, 0.82, 0.84), (0.95, 0.95, 0.95)),
}
_GROUNDS = {
    "grass": ((0.22, 0.38, 0.12), (0.40, 0.52, 0.18)),
    "sand": ((0.70, 0.60, 0.42), (0.84, 0.75, 0.56)),
    "rock": ((0.30, 0.30, 0.30), (0.55, 0.54, 0.52)),
}
_MOUNTAIN_ROCK = ((0.30, 0.30, 0.33), (0.38, 0.34, 0.30), (0.28, 0.32, 0.30))
_HILL_GREEN = ((0.20, 0.34, 0.14), (0.28, 0.38, 0.16), (0.18, 0.30, 0.18), (0.36, 0.38, 0.20))


def _col(c) -> np.ndarray:
    return np.asarray(c, np.float32)


def _jitter(rng: np.random.Generator, colour, amount: float = 0.05) -> np.ndarray:
    return np.clip(_col(colour) + rng.uniform(-amount, amount, 3).astype(np.float32), 0.0, 1.0)


def _sky(rng: np.random.Generator, h: int, w: int, horizon: float, light: str) -> tuple[np.ndarray, np.ndarray]:
    """Sky image and the haze colour (the sky just above the horizon)."""
    zenith, low, sun = (_jitter(rng, c) for c in _LIGHTS[light])
    y = np.arange(h, dtype=np.float32)[:, None] / max(horizon, 1.0)
    t = np.clip(y, 0.0, 1.0) ** rng.uniform(0.5, 0.9)
    sky = zenith * (1 - t[..., None]) + low * t[..., None]
    sky = np.broadcast_to(sky, (h, w, 3)).copy()

    sx, sy = rng.uniform(0.1, 0.9) * w, rng.uniform(0.25, 0.85) * horizon
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    d = np.hypot(xx - sx, (yy - sy) * 1.15) / w
    strength = {"day": 0.35, "golden": 0.6, "overcast": 0.12}[light]
    glow = strength * np.exp(-d / 0.22) + 0.5 * strength * np.exp(-d / 0.04)
    sky = sky + (sun - sky * 0.5) * np.clip(glow, 0, 1)[..., None]
    if light != "overcast":
        disk = 1.0 - smoothstep(0.011, 0.016, d)
        sky = sky * (1 - disk[..., None]) + _col((1.0, 0.99, 0.95)) * disk[..., None]

    # Clouds: elongated soft noise, thinning towards the horizon, lit from above.
    n = _noise(rng, h, w, beta=rng.uniform(3.4, 4.0), stretch=(2.4, 1.0), cutoff=1.5)
    cover = {"day": rng.uniform(0.0, 1.0), "golden": rng.uniform(0.2, 0.9), "overcast": 1.8}[light]
    clouds = smoothstep(1.3 - cover, 2.4 - cover, n) * (1 - smoothstep(0.55, 1.0, y))
    shade = 0.5 + 0.5 * np.tanh(-np.gradient(n, axis=0) * h * 0.02)
    cloud_col = (sun * 0.45 + 0.5) * (0.82 + 0.18 * shade[..., None])
    if light == "overcast":
        cloud_col = cloud_col * 0.82
    sky = sky * (1 - clouds[..., None] * 0.85) + cloud_col * clouds[..., None] * 0.85
    return np.clip(sky, 0, 1), low * 0.85 + zenith * 0.15


def _noise(rng: np.random.Generator, h: int, w: int, down: int = 2, **kwargs) -> np.ndarray:
    """2D fractal noise made at 1/``down`` size and enlarged: smooth fields need no full-size FFT."""
    small = fractal_noise(rng, (max(8, h // down), max(8, w // down)), **kwargs)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC)


def _ridge(rng: np.random.Generator, w: int, base: float, amplitude: float, roughness: float) -> np.ndarray:
    """Heights (row index of the ridge) of one ridgeline, a 1D fractal noise profile."""
    n = fractal_noise(rng, (w * 2,), beta=roughness, cutoff=1.0)[:w]  # half a period: no wrap-around look
    n = n - n.min()
    n = n / (n.max() or 1.0)
    return base - amplitude * n


def _layer(rng: np.random.Generator, img: np.ndarray, ridge: np.ndarray, colour: np.ndarray,
           haze: np.ndarray, fog: float, snow: float | None, rocky: bool) -> None:
    """Paint one ridgeline layer in place: texture, light on slopes, snow, distance haze."""
    h, w, _ = img.shape
    yy = np.arange(h, dtype=np.float32)[:, None]
    depth = yy - ridge[None, :]  # pixels below the ridge
    mask = smoothstep(-0.8, 0.8, depth)
    # Terrain relief: bumps of a noise field lit from the side; on mountains the bumps run
    # downhill (gullies), on hills they are round.
    relief = _noise(rng, h, w, down=1 if rocky else 2, beta=rng.uniform(2.4, 2.9),
                    stretch=(0.45, 1.0) if rocky else (1.0, 1.0))
    side = np.tanh(np.gradient(relief, axis=1) * w * (0.02 if rocky else 0.01))
    light = 1.0 + (0.28 if rocky else 0.12) * side
    tex = _noise(rng, h, w, down=1, beta=1.6)
    col = colour[None, None, :] * (light * (1.0 + 0.07 * tex))[..., None]
    if snow is not None:
        # Snow above a wavy snow line, reaching lower in the gullies.
        line = snow + h * 0.04 * relief
        cover = 1 - smoothstep(-3.0, 3.0, yy - line)
        cover = cover * smoothstep(-0.2, 0.3, relief + 0.2 * tex)
        white = _col((0.92, 0.94, 0.98)) * np.clip(light * 1.02, 0, 1.1)[..., None]
        col = col * (1 - cover[..., None]) + white * cover[..., None]
    # Aerial perspective, plus mist gathering towards the foot of a far layer.
    mist = np.clip(fog + fog * 0.5 * smoothstep(0, h * 0.25, depth), 0, 0.95)
    col = col * (1 - mist[..., None]) + haze * mist[..., None]
    img[...] = img * (1 - mask[..., None]) + col * mask[..., None]


def _lake(rng: np.random.Generator, img: np.ndarray, shore: int, water: np.ndarray) -> None:
    """Mirror everything above ``shore`` into the rows below it, rippled and tinted (in place)."""
    h, w, _ = img.shape
    rows = np.arange(shore, h, dtype=np.float32)
    dist = (rows - shore)[:, None]
    ripple = fractal_noise(rng, (h - shore, w), beta=2.0, stretch=(0.25, 1.0))  # horizontal waves
    map_y = (2 * shore - rows)[:, None] + ripple * (0.5 + dist * 0.02) - 1.0
    map_x = np.arange(w, dtype=np.float32)[None, :] + ripple * (1.0 + dist * 0.04)
    reflected = cv2.remap(img, map_x.astype(np.float32), np.clip(map_y, 0, h - 1).astype(np.float32),
                          cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    fresnel = 0.75 - 0.45 * smoothstep(0, h - shore, dist)  # grazing view near the shore reflects more
    img[shore:] = reflected * fresnel[..., None] + water * (1 - fresnel[..., None])


def _foreground(rng: np.random.Generator, img: np.ndarray, ridge: np.ndarray, kind: str,
                horizon: float) -> None:
    """Paint the near ground below ``ridge`` with a grass, sand or rock texture (in place)."""
    h, w, _ = img.shape
    dark, bright = (_jitter(rng, c, 0.04) for c in _GROUNDS[kind])
    yy = np.arange(h, dtype=np.float32)[:, None]
    depth = yy - ridge[None, :]
    mask = smoothstep(-0.8, 0.8, depth)
    near = np.clip((yy - horizon) / max(h - horizon, 1.0), 0, 1)  # 0 far, 1 at the bottom edge
    coarse = _noise(rng, h, w, beta=2.2)
    if kind == "grass":
        blades = fractal_noise(rng, (h, w), beta=1.2, stretch=(0.15, 1.0))  # vertical streaks
        t = 0.5 + 0.22 * coarse + 0.18 * blades * near
    elif kind == "sand":
        ripples = np.sin(yy * rng.uniform(0.25, 0.45) * (0.3 + near) + coarse * 2.0)
        t = 0.55 + 0.15 * coarse + 0.08 * ripples
    else:
        fine = fractal_noise(rng, (h, w), beta=1.5)
        cracks = (1 - smoothstep(0.0, 0.06, np.abs(_noise(rng, h, w, beta=2.4)))) * 0.35
        pebbles = smoothstep(1.2, 1.6, fine) * 0.3 * near  # bright stones, visible up close
        t = 0.5 + 0.25 * coarse + 0.12 * fine - cracks + pebbles
    t = np.clip(t, 0, 1)[..., None]
    col = dark * (1 - t) + bright * t
    col = col * (0.75 + 0.3 * (1 - near))[..., None]  # the far part of the field catches more light
    img[...] = img * (1 - mask[..., None]) + col * mask[..., None]


def make_background(rng: np.random.Generator, width: int = 640, height: int = 480) -> np.ndarray:
    """One landscape picture, RGB uint8 ``height`` x ``width``."""
    h, w = height, width
    light = str(rng.choice(["day", "day", "golden", "overcast"]))
    horizon = h * rng.uniform(0.42, 0.6)
    img, haze = _sky(rng, h, w, horizon, light)
    img = img.astype(np.float32)
    lake = rng.random() < 0.4
    ground = str(rng.choice(list(_GROUNDS)))
    # Far mountains, then nearer hills; each layer's foot sits lower and its haze is thinner.
    n_mountains, n_hills = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    n_layers = n_mountains + n_hills
    for i in range(n_layers):
        rocky = i < n_mountains
        base = horizon + h * 0.03 * i
        if rocky:
            amp = h * rng.uniform(0.14, 0.32) * (1.0 - 0.3 * i)
            ridge = _ridge(rng, w, base, amp, rng.uniform(2.2, 2.6))
            colour = _jitter(rng, _MOUNTAIN_ROCK[int(rng.integers(len(_MOUNTAIN_ROCK)))], 0.03)
        else:
            amp = h * rng.uniform(0.03, 0.09)
            ridge = _ridge(rng, w, base, amp, rng.uniform(2.8, 3.4))
            colour = _jitter(rng, _HILL_GREEN[int(rng.integers(len(_HILL_GREEN)))], 0.03)
        fog = 0.62 * (1.0 - i / n_layers) ** 1.5  # aerial perspective: farther is paler and bluer
        snow = base - amp * rng.uniform(0.5, 0.8) if rocky and rng.random() < 0.6 else None
        _layer(rng, img, ridge, colour, haze, fog, snow, rocky)
    shore = int(round(horizon + h * 0.03 * n_layers + h * 0.01))
    if lake and shore < h - 20:
        water = _jitter(rng, (0.10, 0.20, 0.26), 0.03) * 0.6 + haze * 0.4
        _lake(rng, img, shore, water)
        fg_base = h - h * rng.uniform(0.03, 0.12)
    else:
        fg_base = shore + h * rng.uniform(0.02, 0.08)
    fg = _ridge(rng, w, fg_base, h * rng.uniform(0.03, 0.08), 2.6)
    _foreground(rng, img, fg, ground, horizon)

    # Photographic finish: lens softness, vignette, grain.
    img = cv2.GaussianBlur(img, (0, 0), 0.6)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot((xx - w / 2) / (w / 2), (yy - h / 2) / (h / 2))
    img = img * (1 - 0.18 * smoothstep(0.6, 1.5, r))[..., None]
    img = img + rng.normal(0.0, 0.008, img.shape).astype(np.float32)
    return (np.clip(img, 0, 1) * 255 + 0.5).astype(np.uint8)
