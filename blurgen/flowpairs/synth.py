"""Procedural scenes with exact flow: textured layers moving with known affine motion.

A ``Scene`` is a background picture plus 1-4 flat textured layers (ellipses and star-shaped
polygons) painted over it in order (painter's algorithm: later layers occlude earlier ones).
Everything moves by an affine ``Motion`` whose parameters are interpolated linearly in time:
a point at ``x`` at t = 0 is at ``c + t d + s(t) R(t phi) (x - c)`` at time t, with ``s(t) =
1 + t (scale - 1)``. The background may move too, like a camera panning, rolling and zooming
(``procedural_scene`` moves it in about half of its scenes); it is a canvas larger than the
image, so no empty border slides in.

Because the motion is known, both the frames and the flow are exact:

- ``render(t)`` samples, for every pixel centre, the background and each layer at the point
  that the inverse motion brings it back to (bilinear texture sampling; the layer's coverage is
  its shape mask sampled bilinearly, which anti-aliases the edge over about a pixel).
- ``flow(t0, t1)`` takes, for every pixel, the topmost layer that covers it at ``t0`` (coverage
  >= 0.5; else the background), maps the pixel through that layer's motion from ``t0`` to
  ``t1``, and calls the vector valid iff the end point lies inside the image (0 <= x <= W-1,
  0 <= y <= H-1) and no layer above its owner covers the end point at ``t1``. So
  ``render(t0)(x) ≈ render(t1)(x + flow(x))`` on valid pixels, up to bilinear resampling
  and the one pixel wide anti-aliased rim of a layer, whose colour mixes two surfaces
  (tests/test_flowpairs_synth.py measures a mean abs error below 0.01 in linear light on all
  valid pixels, below 0.003 away from rims).

Textures are kept band-limited so that resampling stays small: layer textures are magnified
at least 1.5x, and the background canvas (``make_background``, whose per-pixel grain is
sensor noise that would not move with the scene) is smoothed with a 1 px Gaussian.

Coordinates are pixels, x right, y down, pixel centres at integers; a positive rotation turns
+x towards +y (clockwise on screen).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from blurgen.assets.demo_backgrounds import make_background
from blurgen.assets.demo_textures import make_texture
from blurgen.color import srgb_to_linear
from blurgen.flow.warp import pixel_grid, sample

COVERED = 0.5  # coverage from which a pixel belongs to a layer (for flow and visibility)
TEXTURE_SIZE = 128  # layer textures are periodic, so a small tile is enough
BACKGROUND_SMOOTHING = 1.0  # Gaussian sigma (px) applied to the background canvas


def _rotation(angle: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    return np.array([[c, -s], [s, c]])


def _affine(linear: np.ndarray, offset) -> np.ndarray:
    """3x3 homogeneous matrix from a 2x2 linear part and a translation."""
    m = np.eye(3)
    m[:2, :2] = linear
    m[:2, 2] = offset
    return m


def _apply(m: np.ndarray, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Apply the 3x3 affine ``m`` to point arrays (computed in float64)."""
    return m[0, 0] * x + m[0, 1] * y + m[0, 2], m[1, 0] * x + m[1, 1] * y + m[1, 2]


@dataclass(frozen=True)
class Motion:
    """Affine motion over t in [0, 1] about ``centre``, parameters linear in t.

    A point at ``x`` at t = 0 is at ``centre + t translation + s(t) R(t rotation) (x - centre)``
    at time t, ``s(t) = 1 + t (scale - 1)``. The identity at t = 0; any t is allowed.
    """

    centre: tuple[float, float] = (0.0, 0.0)
    translation: tuple[float, float] = (0.0, 0.0)
    rotation: float = 0.0  # radians at t = 1
    scale: float = 1.0  # at t = 1

    def matrix(self, t: float) -> np.ndarray:
        """3x3 map from positions at t = 0 to positions at time ``t``."""
        c = np.asarray(self.centre, np.float64)
        d = np.asarray(self.translation, np.float64)
        s = 1.0 + t * (self.scale - 1.0)
        linear = s * _rotation(t * self.rotation)
        return _affine(linear, c + t * d - linear @ c)

    def between(self, t0: float, t1: float) -> np.ndarray:
        """3x3 map from positions at ``t0`` to positions at ``t1``."""
        return self.matrix(t1) @ np.linalg.inv(self.matrix(t0))


@dataclass
class Layer:
    """A flat textured shape. Local coordinates are layer pixels (image pixels at t = 0)
    relative to the centre of ``mask``; ``texture`` tiles the plane (periodic)."""

    texture: np.ndarray  # S x S x 3 float32 linear, periodic in both axes
    mask: np.ndarray  # M x M float32 coverage (0 or 1); local origin at its centre pixel
    centre: tuple[float, float]  # image position of the local origin at t = 0
    orientation: float = 0.0  # local -> image rotation at t = 0 (radians)
    texture_scale: float = 1.0  # image pixels per texture pixel (>= 1 keeps the texture smooth)
    motion: Motion = field(default_factory=Motion)

    def placement(self, t: float) -> np.ndarray:
        """3x3 map from local layer coordinates to image positions at time ``t``."""
        return self.motion.matrix(t) @ _affine(_rotation(self.orientation), self.centre)

    @property
    def mask_origin(self) -> tuple[float, float]:
        """Mask array coordinates (x, y) of the local origin."""
        return (self.mask.shape[1] - 1) / 2.0, (self.mask.shape[0] - 1) / 2.0

    def local(self, t: float, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Local coordinates of the image points (x, y) at time ``t``."""
        return _apply(np.linalg.inv(self.placement(t)), x, y)

    def coverage(self, t: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Coverage in [0, 1] of the image points (x, y) at time ``t`` (float32)."""
        lx, ly = self.local(t, x, y)
        ox, oy = self.mask_origin
        return sample(self.mask, lx + ox, ly + oy, border="constant", fill=0.0)

    def colour(self, t: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Texture colour (float32 linear, ... x 3) at the image points (x, y) at time ``t``."""
        lx, ly = self.local(t, x, y)
        return sample(self.texture, lx / self.texture_scale, ly / self.texture_scale, border="wrap")

    def bbox(self, t: float, width: int, height: int) -> tuple[int, int, int, int] | None:
        """Pixel box (x0, y0, x1, y1), exclusive ends, holding the layer at ``t``; None if off-image."""
        h, w = self.mask.shape
        ox, oy = self.mask_origin
        cx = np.array([-1.0 - ox, w - ox, w - ox, -1.0 - ox])
        cy = np.array([-1.0 - oy, -1.0 - oy, h - oy, h - oy])
        px, py = _apply(self.placement(t), cx, cy)
        x0, x1 = max(int(math.floor(px.min())), 0), min(int(math.ceil(px.max())) + 1, width)
        y0, y1 = max(int(math.floor(py.min())), 0), min(int(math.ceil(py.max())) + 1, height)
        return (x0, y0, x1, y1) if x0 < x1 and y0 < y1 else None


@dataclass
class Scene:
    """Background plus layers in painter's order (``layers[0]`` at the bottom)."""

    width: int
    height: int
    background: np.ndarray  # Hc x Wc x 3 float32 linear, the canvas (at least the image's size)
    background_origin: tuple[float, float] = (0.0, 0.0)  # canvas position of image pixel (0, 0) at t = 0
    background_motion: Motion = field(default_factory=Motion)
    layers: list[Layer] = field(default_factory=list)

    def _background_at(self, t: float, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        cx, cy = _apply(np.linalg.inv(self.background_motion.matrix(t)), x, y)
        ox, oy = self.background_origin
        # Reflection only matters if a motion carries the canvas edge into view; the canvas
        # made by procedural_scene has a margin for its motion.
        return sample(self.background, cx + ox, cy + oy, border="reflect")

    def render(self, t: float) -> np.ndarray:
        """H x W x 3 float32 linear frame at time ``t``."""
        gx, gy = pixel_grid(self.height, self.width, np.float64)
        image = self._background_at(t, gx, gy)
        for layer in self.layers:
            box = layer.bbox(t, self.width, self.height)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            bx, by = gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]
            alpha = layer.coverage(t, bx, by)[..., None]
            region = image[y0:y1, x0:x1]
            region += alpha * (layer.colour(t, bx, by) - region)  # "over" compositing, in place
        return image

    def owner(self, t: float) -> np.ndarray:
        """H x W int: index of the topmost layer covering each pixel at ``t`` (-1: background)."""
        gx, gy = pixel_grid(self.height, self.width, np.float64)
        owner = np.full((self.height, self.width), -1, np.int32)
        for k, layer in enumerate(self.layers):
            box = layer.bbox(t, self.width, self.height)
            if box is None:
                continue
            x0, y0, x1, y1 = box
            covered = layer.coverage(t, gx[y0:y1, x0:x1], gy[y0:y1, x0:x1]) >= COVERED
            owner[y0:y1, x0:x1][covered] = k
        return owner

    def flow(self, t0: float, t1: float) -> tuple[np.ndarray, np.ndarray]:
        """Exact flow from time ``t0`` to ``t1``: (H x W x 2 float32, H x W bool valid).

        Every pixel gets the motion of the surface it shows at ``t0``; valid iff that point is
        inside the image and not hidden by a layer above it at ``t1``.
        """
        gx, gy = pixel_grid(self.height, self.width, np.float64)
        owner = self.owner(t0)
        ex, ey = _apply(self.background_motion.between(t0, t1), gx, gy)
        for k, layer in enumerate(self.layers):
            mine = owner == k
            if mine.any():
                m = layer.placement(t1) @ np.linalg.inv(layer.placement(t0))
                kx, ky = _apply(m, gx[mine], gy[mine])
                ex[mine], ey[mine] = kx, ky
        valid = (ex >= 0) & (ex <= self.width - 1) & (ey >= 0) & (ey <= self.height - 1)
        for j, layer in enumerate(self.layers):
            below = owner < j  # surfaces that layer j would hide
            if below.any():
                hidden = layer.coverage(t1, ex[below], ey[below]) >= COVERED
                valid[below] &= ~hidden
        flow = np.stack([ex - gx, ey - gy], axis=2).astype(np.float32)
        return flow, valid

    def max_motion(self) -> float:
        """Largest displacement over t in [0, 1] of any point of the background inside the
        image or of any layer (an upper bound on the flow magnitude, from the shapes' corners)."""
        w, h = self.width, self.height
        cx = np.array([0.0, w - 1, w - 1, 0.0])
        cy = np.array([0.0, 0.0, h - 1, h - 1])
        best = 0.0
        for t in np.linspace(0.0, 1.0, 11)[1:]:
            px, py = _apply(self.background_motion.matrix(t), cx, cy)
            best = max(best, float(np.hypot(px - cx, py - cy).max()))
            for layer in self.layers:
                mh, mw = layer.mask.shape
                ox, oy = layer.mask_origin
                lx = np.array([-ox, mw - 1 - ox, mw - 1 - ox, -ox])
                ly = np.array([-oy, -oy, mh - 1 - oy, mh - 1 - oy])
                ax, ay = _apply(layer.placement(0.0), lx, ly)
                bx, by = _apply(layer.placement(t), lx, ly)
                best = max(best, float(np.hypot(bx - ax, by - ay).max()))
        return best


# --- procedural scenes -------------------------------------------------------------------

def _draw_target(rng: np.random.Generator, max_displacement: float) -> float:
    """Largest displacement aimed at for one scene: 15 % of scenes in 1-5 px, 70 % in 5-60 px,
    15 % in 60 px..``max_displacement`` (all bands clipped to ``max_displacement``)."""
    top = max(float(max_displacement), 0.0)
    u = float(rng.random())
    if u < 0.15 or top <= 5.0:
        lo, hi = min(1.0, top), min(5.0, top)
    elif u < 0.85 or top <= 60.0:
        lo, hi = 5.0, min(60.0, top)
    else:
        lo, hi = 60.0, top
    return float(rng.uniform(lo, hi))


def _draw_motion(rng: np.random.Generator, centre, radius: float, target: float,
                 max_turn_share: float) -> Motion:
    """A motion whose points within ``radius`` of ``centre`` move at most about ``target`` px.

    A share of the budget (up to ``max_turn_share``) goes to rotation and scaling, whose
    displacement at ``radius`` is at most ``radius (|phi| + |scale - 1|)``; the rest to the
    translation. By the triangle inequality the largest displacement is <= ``target``.
    """
    share = float(rng.uniform(0.0, max_turn_share))
    split = float(rng.uniform(0.0, 1.0))
    turn_budget = share * target / max(radius, 1.0)
    rotation = float(np.clip(rng.choice([-1.0, 1.0]) * split * turn_budget, -0.6, 0.6))
    scale = float(np.clip(1.0 + rng.choice([-1.0, 1.0]) * (1.0 - split) * turn_budget, 0.7, 1.5))
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    speed = (1.0 - share) * target
    return Motion(centre=(float(centre[0]), float(centre[1])),
                  translation=(speed * math.cos(angle), speed * math.sin(angle)),
                  rotation=rotation, scale=scale)


def _shape_polygon(rng: np.random.Generator, radius: float) -> np.ndarray:
    """Vertices (N x 2, local coordinates) of an ellipse or a star-shaped polygon within ``radius``."""
    if rng.random() < 0.4:
        a, b = radius, radius * float(rng.uniform(0.45, 1.0))
        angles = np.linspace(0.0, 2.0 * math.pi, 96, endpoint=False)
        return np.stack([a * np.cos(angles), b * np.sin(angles)], axis=1)
    k = int(rng.integers(3, 10))
    angles = np.sort(rng.uniform(0.0, 2.0 * math.pi, k))
    radii = radius * rng.uniform(0.55, 1.0, k)
    return np.stack([radii * np.cos(angles), radii * np.sin(angles)], axis=1)


def polygon_mask(vertices: np.ndarray, radius: float) -> np.ndarray:
    """Binary float32 mask of a polygon given in local coordinates (origin at the mask centre)."""
    size = 2 * int(math.ceil(radius)) + 5
    origin = (size - 1) / 2.0
    mask = np.zeros((size, size), np.uint8)
    points = np.round((vertices + origin) * 16.0).astype(np.int32)  # 4 fractional bits
    cv2.fillPoly(mask, [points], 1, lineType=cv2.LINE_8, shift=4)
    return mask.astype(np.float32)


def _make_layer(rng: np.random.Generator, width: int, height: int, target: float) -> Layer:
    radius = float(rng.uniform(0.12, 0.3)) * min(width, height)
    vertices = _shape_polygon(rng, radius)
    texture_u8, _, _ = make_texture(rng, TEXTURE_SIZE)
    centre = (float(rng.uniform(0.1, 0.9)) * (width - 1), float(rng.uniform(0.1, 0.9)) * (height - 1))
    orientation = float(rng.uniform(0.0, 2.0 * math.pi))
    # Magnified at least 1.5x, so that even a layer shrinking to 0.7x is not minified: minified
    # texture aliases, and the frames would then disagree by more than resampling blur.
    texture_scale = float(rng.uniform(1.5, 3.0))
    motion = _draw_motion(rng, centre, radius, target, max_turn_share=0.4)
    return Layer(texture=srgb_to_linear(texture_u8), mask=polygon_mask(vertices, radius), centre=centre,
                 orientation=orientation, texture_scale=texture_scale, motion=motion)


def procedural_scene(rng: np.random.Generator, width: int, height: int,
                     max_displacement: float = 100.0) -> Scene:
    """A random scene whose largest displacement over [0, 1] is at most about ``max_displacement``.

    The scene's target displacement follows ``_draw_target`` (some scenes 1-5 px, most 5-60 px,
    a tail up to ``max_displacement``); one moving element (a layer, or the background when it
    moves) gets the full target and the others 10-100 % of it. The background moves in about
    half of the scenes, with at most 30 % of its budget in rotation and zoom.
    """
    if width < 8 or height < 8:
        raise ValueError(f"scene size must be at least 8 x 8, got {width} x {height}")
    target = _draw_target(rng, max_displacement)
    n_layers = int(rng.integers(1, 5))
    background_moves = bool(rng.random() < 0.5)
    fastest = int(rng.integers(-1 if background_moves else 0, n_layers))  # -1: the background

    def share(k: int) -> float:
        return target if k == fastest else target * float(rng.uniform(0.1, 1.0))

    if background_moves:
        centre = ((width - 1) / 2.0, (height - 1) / 2.0)
        bg_motion = _draw_motion(rng, centre, math.hypot(width, height) / 2.0, share(-1), max_turn_share=0.3)
    else:
        bg_motion = Motion()
    layers = [_make_layer(rng, width, height, share(k)) for k in range(n_layers)]

    # Canvas margin: the inverse motion moves image points by at most |x - M x| / min(scale, 1)
    # (plus rounding), so this much canvas around the image stays in view for all t in [0, 1].
    reach = Scene(width, height, np.zeros((1, 1, 3), np.float32), background_motion=bg_motion).max_motion()
    margin = int(math.ceil(reach / min(bg_motion.scale, 1.0))) + 4 if background_moves else 0
    canvas = srgb_to_linear(make_background(rng, width + 2 * margin, height + 2 * margin))
    # The landscape's per-pixel grain is sensor noise, which does not move with the scene; a
    # slight blur removes it and band-limits the canvas, so zooming frames stay alias-free.
    canvas = cv2.GaussianBlur(canvas, (0, 0), BACKGROUND_SMOOTHING)
    return Scene(width=width, height=height, background=canvas,
                 background_origin=(float(margin), float(margin)), background_motion=bg_motion,
                 layers=layers)
