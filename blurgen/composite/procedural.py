"""Built-in procedural "photos" with exact instance masks: the default source of ``blurgen composite``.

A picture is a landscape background with 2-6 textured foreground objects in front of it. One of
them is often a figure-like person split into the fine-grained parts the subtle-blur paper
segments separately (§3.1: face, hair, hands, plus the torso with its arms), the others are
ellipses, polygons, stars and boxes at different sizes. Objects are painted back to front and
later ones occlude earlier ones; every pixel belongs to the last instance painted over it, so
mask k is exactly the set of pixels that show instance k. Shapes are drawn with binary coverage
(no anti-aliasing) for the same reason: a pixel is either the object's or not.

Everything is sharp on purpose. The paper trains on sharp references whose only blur is the one
the generator adds ("sharp" images with residual blur make ambiguous labels), so nothing here is
upscaled or softened.

Speed: ``make_background`` takes ~0.4 s at 640x480, far too slow for a source that is painted
again for every sample. Backgrounds therefore come from a small bank of wide landscapes, painted
once per process and seed (``BACKGROUND_BANK`` of them, lazily), from which each photo takes a
random window, a mirror image and its own exposure and white balance. The foreground, the part
that is blurred and labelled, is unique to each photo. Painting a 640x480 photo then takes ~15-30 ms.
"""

from __future__ import annotations

import functools
from typing import Callable

import cv2
import numpy as np

from blurgen.assets.demo_backgrounds import make_background
from blurgen.assets.demo_textures import make_texture
from blurgen.assets.noise import fractal_noise
from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.composite.sources import SourceRef
from blurgen.rng import item_rng

BACKGROUND_BANK = 8            # landscapes per seed that backgrounds are cut from
_BANK_WIDEN = 1.5              # bank pictures are this much wider than a photo: room for a window
_STREAM_PHOTO = 0x70686F74     # item_rng streams ("phot", "bank"): independent of other users
_STREAM_BANK = 0x62616E6B      # of item_rng(seed, index)

# Skin and hair colours, sRGB in [0, 1].
_SKIN = ((0.96, 0.80, 0.69), (0.91, 0.72, 0.58), (0.80, 0.60, 0.46), (0.66, 0.46, 0.32),
         (0.50, 0.34, 0.24), (0.36, 0.24, 0.17))
_HAIR = ((0.08, 0.06, 0.05), (0.23, 0.14, 0.08), (0.42, 0.27, 0.15), (0.78, 0.62, 0.38),
         (0.55, 0.22, 0.10), (0.62, 0.62, 0.60))
_SHAPES = ("ellipse", "polygon", "star", "box")

Painter = Callable[[int, int, int, int], np.ndarray]  # (x, y, w, h) of a box -> h x w x 3 sRGB float


@functools.lru_cache(maxsize=2 * BACKGROUND_BANK)
def _bank_picture(seed: int, slot: int, width: int, height: int) -> np.ndarray:
    """Bank landscape ``slot`` of ``seed`` (uint8 sRGB, read-only): a pure function, cached per process."""
    picture = make_background(item_rng(seed, slot, _STREAM_BANK), width, height)
    picture.flags.writeable = False
    return picture


def _background(rng: np.random.Generator, seed: int, width: int, height: int) -> np.ndarray:
    """A landscape window (uint8 sRGB, writable) with its own framing, exposure and white balance."""
    wide = int(round(width * _BANK_WIDEN))
    bank = _bank_picture(seed, int(rng.integers(BACKGROUND_BANK)), wide, height)
    x0 = int(rng.integers(0, wide - width + 1))
    window = bank[:, x0:x0 + width]
    if rng.random() < 0.5:
        window = window[:, ::-1]
    # Exposure and white balance act on light, so the gains apply in linear light; a per-channel
    # 256-entry table does it exactly on the 8-bit picture.
    gain = 2.0 ** rng.uniform(-0.5, 0.4) * (1.0 + rng.uniform(-0.06, 0.06, 3))
    levels = srgb_to_linear(np.arange(256, dtype=np.uint8))[:, None] * gain[None, :]
    table = linear_to_srgb_uint8(levels.astype(np.float32)).reshape(256, 1, 3)
    return cv2.LUT(np.ascontiguousarray(window), table)


def _grid(x: int, y: int, w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates of a box, as broadcastable row and column vectors."""
    return (np.arange(y, y + h, dtype=np.float32)[:, None] + 0.5,
            np.arange(x, x + w, dtype=np.float32)[None, :] + 0.5)


def _tile(pattern: np.ndarray, w: int, h: int, ox: int, oy: int) -> np.ndarray:
    """A h x w window of the periodic ``pattern`` repeated, starting at offset (ox, oy)."""
    ph, pw = pattern.shape[:2]
    reps = (-(-(h + oy) // ph), -(-(w + ox) // pw)) + (1,) * (pattern.ndim - 2)
    return np.tile(pattern, reps)[oy:oy + h, ox:ox + w]


def _light(rng: np.random.Generator, cx: float, cy: float, radius: float, strength: float):
    """Shading of a roughly round object lit from one side: factor ~1 +/- strength across it."""
    angle = rng.uniform(0.0, 2.0 * np.pi)
    dx, dy = np.cos(angle), np.sin(angle)

    def shade(yy: np.ndarray, xx: np.ndarray) -> np.ndarray:
        along = ((xx - cx) * dx + (yy - cy) * dy) / max(radius, 1.0)
        return 1.0 + strength * np.clip(along, -1.5, 1.5)
    return shade


def _textured(rng: np.random.Generator, cx: float, cy: float, radius: float) -> Painter:
    """A make_texture pattern repeated over the object (sharp: tiled, never stretched), lit from a side."""
    size = 64 if radius < 60 else 128
    pattern = make_texture(rng, size)[0].astype(np.float32) / 255.0
    ox, oy = (int(v) for v in rng.integers(0, size, 2))
    shade = _light(rng, cx, cy, radius, rng.uniform(0.08, 0.25))

    def paint(x: int, y: int, w: int, h: int) -> np.ndarray:
        yy, xx = _grid(x, y, w, h)
        return _tile(pattern, w, h, ox, oy) * shade(yy, xx)[..., None]
    return paint


def _skin(rng: np.random.Generator, colour: np.ndarray, cx: float, cy: float, rx: float, ry: float) -> Painter:
    """Skin: a flat tone, darker towards the rim of the (rx, ry) ellipse (roundness), fine pores."""
    shade = _light(rng, cx, cy, max(rx, ry), 0.12)
    pores = fractal_noise(rng, (32, 32), beta=1.0)[..., None]

    def paint(x: int, y: int, w: int, h: int) -> np.ndarray:
        yy, xx = _grid(x, y, w, h)
        rim = np.clip(((xx - cx) / max(rx, 1.0)) ** 2 + ((yy - cy) / max(ry, 1.0)) ** 2, 0.0, 1.0)
        factor = (shade(yy, xx) * (1.0 - 0.25 * rim ** 2))[..., None]
        return colour * factor * (1.0 + 0.03 * _tile(pores, w, h, 0, 0))
    return paint


def _hair(rng: np.random.Generator, colour: np.ndarray, cx: float, cy: float, radius: float) -> Painter:
    """Hair: the hair colour streaked by strands (noise stretched along the rows' normal)."""
    strands = fractal_noise(rng, (64, 64), beta=1.3, stretch=(0.15, 1.0))[..., None]
    shade = _light(rng, cx, cy, radius, 0.15)

    def paint(x: int, y: int, w: int, h: int) -> np.ndarray:
        yy, xx = _grid(x, y, w, h)
        streaks = 1.0 + 0.22 * np.clip(_tile(strands, w, h, 0, 0), -2.5, 2.5)
        return colour * streaks * shade(yy, xx)[..., None]
    return paint


def _ellipse(mask: np.ndarray, cx: float, cy: float, ax: float, ay: float, angle_deg: float) -> None:
    cv2.ellipse(mask, (int(round(cx)), int(round(cy))), (max(1, int(round(ax))), max(1, int(round(ay)))),
                angle_deg, 0.0, 360.0, 1, thickness=-1, lineType=cv2.LINE_8)


def _polygon(mask: np.ndarray, points: np.ndarray) -> None:
    cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1, lineType=cv2.LINE_8)


def _person(rng: np.random.Generator, w: int, h: int) -> list[tuple[str, np.ndarray, Painter, Callable | None]]:
    """A figure split into its parts, in painting order: torso with arms, hair, face, two hands.

    Returns (name, mask, painter, details) per part; ``details`` draws extra features (eyes,
    mouth) into the part's painted box, inside its own mask.
    """
    r = rng.uniform(0.05, 0.11) * h  # head radius sets the scale of the whole figure
    cx, cy = rng.uniform(0.15, 0.85) * w, rng.uniform(0.15, 0.5) * h
    tilt = rng.uniform(-12.0, 12.0)
    skin = np.asarray(_SKIN[int(rng.integers(len(_SKIN)))], np.float32) * rng.uniform(0.92, 1.06)
    hair_colour = np.asarray(_HAIR[int(rng.integers(len(_HAIR)))], np.float32) * rng.uniform(0.85, 1.1)
    parts = []

    # Torso: neck to hips as a trapezoid, arms as thick lines from the shoulders to the hands.
    torso = np.zeros((h, w), np.uint8)
    neck_y, hip_y = cy + 1.05 * r, cy + rng.uniform(5.5, 7.5) * r
    half_shoulder, half_hip = rng.uniform(1.3, 1.7) * r, rng.uniform(1.0, 1.4) * r
    _polygon(torso, np.array([[cx - 0.35 * r, cy + 0.6 * r], [cx + 0.35 * r, cy + 0.6 * r],
                              [cx + half_shoulder, neck_y + 0.4 * r], [cx + half_hip, hip_y],
                              [cx - half_hip, hip_y], [cx - half_shoulder, neck_y + 0.4 * r]]))
    hands = []
    for side in (-1.0, 1.0):
        shoulder = np.array([cx + side * (half_shoulder - 0.3 * r), neck_y + 0.5 * r])
        angle = np.deg2rad(rng.uniform(-20.0, 160.0))  # 0: hanging down, 90: sideways, 160: raised
        length = rng.uniform(2.4, 3.2) * r
        hand = shoulder + length * np.array([side * np.sin(angle), np.cos(angle)])
        cv2.line(torso, tuple(int(v) for v in np.round(shoulder)), tuple(int(v) for v in np.round(hand)),
                 1, thickness=max(2, int(round(0.5 * r))), lineType=cv2.LINE_8)
        hands.append((side, hand, angle))
    parts.append(("torso", torso, _textured(rng, cx, (neck_y + hip_y) / 2, 2.0 * r), None))

    # Hair: a cap around the head, sometimes long hair down to the shoulders; the face is painted
    # over it, so the hair mask is what stays visible around the face.
    hair = np.zeros((h, w), np.uint8)
    _ellipse(hair, cx, cy - 0.2 * r, rng.uniform(0.95, 1.15) * r, rng.uniform(1.0, 1.2) * r, tilt)
    if rng.random() < 0.5:
        drop = rng.uniform(1.2, 2.4) * r
        _polygon(hair, np.array([[cx - 1.05 * r, cy - 0.2 * r], [cx + 1.05 * r, cy - 0.2 * r],
                                 [cx + 1.15 * r, cy + drop], [cx - 1.15 * r, cy + drop]]))
    parts.append(("hair", hair, _hair(rng, hair_colour, cx, cy, r), None))

    face = np.zeros((h, w), np.uint8)
    fx, fy = 0.78 * r, 0.98 * r
    _ellipse(face, cx, cy + 0.1 * r, fx, fy, tilt)
    eye_dark = np.asarray(_HAIR[0], np.float32) + 0.05

    def features(box: np.ndarray, x: int, y: int) -> None:
        """Eyes, brows and mouth, drawn into the face's painted box (inside the face ellipse)."""
        t = np.deg2rad(tilt)
        rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
        centre = np.array([cx, cy + 0.1 * r])
        colour = tuple(float(c) for c in eye_dark)
        for ex in (-0.32, 0.32):
            px, py = centre + rot @ np.array([ex * r, -0.12 * r]) - (x, y)
            cv2.ellipse(box, (int(round(px)), int(round(py))), (max(1, int(0.12 * r)), max(1, int(0.07 * r))),
                        tilt, 0, 360, colour, -1, cv2.LINE_8)
            bx, by = centre + rot @ np.array([ex * r, -0.32 * r]) - (x, y)
            cv2.ellipse(box, (int(round(bx)), int(round(by))), (max(1, int(0.16 * r)), max(1, int(0.05 * r))),
                        tilt, 180, 360, colour, max(1, int(0.05 * r)), cv2.LINE_8)
        mx, my = centre + rot @ np.array([0.0, 0.45 * r]) - (x, y)
        lips = tuple(float(c) for c in skin * np.array([0.8, 0.5, 0.5], np.float32))
        cv2.ellipse(box, (int(round(mx)), int(round(my))), (max(1, int(0.25 * r)), max(1, int(0.08 * r))),
                    tilt, 0, 360, lips, -1, cv2.LINE_8)
    parts.append(("face", face, _skin(rng, skin, cx, cy + 0.1 * r, fx, fy), features))

    for side, hand_xy, angle in hands:
        mask = np.zeros((h, w), np.uint8)
        hr = rng.uniform(0.4, 0.55) * r
        direction = np.array([side * np.sin(angle), np.cos(angle)])
        palm = hand_xy + 0.3 * hr * direction
        _ellipse(mask, palm[0], palm[1], 0.8 * hr, hr, float(np.rad2deg(np.arctan2(direction[0], direction[1]))))
        thumb = palm + hr * np.array([-direction[1], direction[0]]) * side * 0.9
        _ellipse(mask, thumb[0], thumb[1], 0.28 * hr, 0.55 * hr, rng.uniform(0, 180))
        name = "hand-left" if side < 0 else "hand-right"
        parts.append((name, mask, _skin(rng, skin, palm[0], palm[1], hr, hr), None))
    return parts


def _shape(rng: np.random.Generator, w: int, h: int, kind: str) -> tuple[np.ndarray, Painter]:
    """One object outline of ``kind`` at a random place and size (possibly partly off the image)."""
    radius = float(min(w, h) * np.exp(rng.uniform(np.log(0.04), np.log(0.3))))
    cx, cy = rng.uniform(-0.05, 1.05) * w, rng.uniform(-0.05, 1.05) * h
    mask = np.zeros((h, w), np.uint8)
    spin = rng.uniform(0.0, 2.0 * np.pi)
    if kind == "ellipse":
        _ellipse(mask, cx, cy, radius, radius * rng.uniform(0.35, 1.0), np.rad2deg(spin))
    elif kind == "polygon":
        n = int(rng.integers(3, 9))
        angles = spin + np.sort(rng.uniform(0.0, 2.0 * np.pi, n))
        radii = radius * rng.uniform(0.6, 1.0, n)
        _polygon(mask, np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1))
    elif kind == "star":
        n = int(rng.integers(5, 9))
        angles = spin + np.arange(2 * n) * np.pi / n
        radii = np.where(np.arange(2 * n) % 2 == 0, radius, radius * rng.uniform(0.38, 0.6))
        _polygon(mask, np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], 1))
    else:  # box
        size = (radius * 2.0, radius * 2.0 * rng.uniform(0.3, 1.0))
        _polygon(mask, cv2.boxPoints(((cx, cy), size, float(np.rad2deg(spin)))))
    return mask, _textured(rng, cx, cy, radius)


def procedural_source(seed: int, index: int, width: int = 640, height: int = 480
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Built-in photo ``index`` of ``seed``: linear float32 HxWx3 image, NxHxW bool masks, names.

    Deterministic in (seed, index, width, height). Masks are exact and disjoint (a pixel shows
    one instance at most); instances hidden entirely by later ones or lying off the image are
    left out, so N is at most the number painted.
    """
    if width < 16 or height < 16:
        raise ValueError(f"procedural photos need at least 16x16 pixels, got {width}x{height}")
    rng = item_rng(seed, index, _STREAM_PHOTO)
    image = _background(rng, seed, width, height)
    with_person = rng.random() < 0.7
    n_objects = int(rng.integers(1, 6)) if with_person else int(rng.integers(2, 7))
    groups: list[list[tuple[str, np.ndarray, Painter, Callable | None]]] = []
    for k in range(n_objects):
        kind = _SHAPES[int(rng.integers(len(_SHAPES)))]
        mask, paint = _shape(rng, width, height, kind)
        groups.append([(f"{kind}-{k}", mask, paint, None)])
    if with_person:  # somewhere in the depth order: objects may stand in front of the person
        groups.insert(int(rng.integers(0, n_objects + 1)), _person(rng, width, height))

    labels = np.zeros((height, width), np.uint8)  # 0: background, k: instance k (painting order)
    names: list[str] = []
    for part_name, mask, paint, details in (part for group in groups for part in group):
        x, y, w, h = cv2.boundingRect(mask)
        if w == 0 or h == 0:
            continue  # entirely off the image
        names.append(f"procedural-{part_name}")
        inside = mask[y:y + h, x:x + w].astype(bool)
        box = paint(x, y, w, h).astype(np.float32)
        if details is not None:
            details(box, x, y)
        box_u8 = (np.clip(box, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
        image[y:y + h, x:x + w][inside] = box_u8[inside]
        labels[y:y + h, x:x + w][inside] = len(names)

    ids = np.arange(1, len(names) + 1, dtype=np.uint8)
    masks = labels[None, :, :] == ids[:, None, None]
    visible = masks.reshape(len(names), -1).any(axis=1) if names else np.zeros(0, bool)
    masks = masks[visible]
    names = [n for n, keep in zip(names, visible) if keep]
    return srgb_to_linear(image), masks, names


class ProceduralMasks:
    """Mask source of the procedural photos: each is painted with its exact masks."""

    def __init__(self, seed: int, size: tuple[int, int] = (640, 480)) -> None:
        self.seed = int(seed)
        self.width, self.height = (int(v) for v in size)  # (width, height), as the config gives it

    def load(self, ref: SourceRef) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """Image, masks and names of the procedural source ``ref``."""
        if not ref.procedural:
            raise ValueError(f"{ref.source_id}: an image file, not a procedural photo")
        return procedural_source(self.seed, ref.index, self.width, self.height)
