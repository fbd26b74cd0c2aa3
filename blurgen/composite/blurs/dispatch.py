"""The registry's entry points: draw a type's parameters, apply its operator, get its PSF.

Types (subtle-blur paper §3.2; one module each in this package, registered in
:mod:`blurgen.composite.blurs`): ``straight``, ``curved``, ``zoom_rotation``, ``random_walk``,
``edge_ring``, ``rolling``. Conventions of the operators: :mod:`blurgen.composite.blurs.base`.
"""

from __future__ import annotations

import math
from typing import Any, Mapping

import numpy as np

from blurgen.composite import motion
from blurgen.composite.blurs import blur_type
from blurgen.composite.blurs.base import BlurResult, bbox_of
from blurgen.composite.config import BlurSection
from blurgen.errors import BlurgenError


def sample_params(kind: str, rng: np.random.Generator, extent_px: float, alpha: np.ndarray,
                  ranges: Any = BlurSection()) -> dict:
    """JSON-serialisable params (plain floats/lists) fully determining the blur.

    Always ``type``, ``extent_px`` and ``angle_deg`` (zoom: ``center``, ``log_scale``,
    ``rotation_deg``). ``extent_px`` is the motion extent of the instance in px: the path length
    travelled by its content during the exposure (zoom_rotation: the largest over its pixels).
    ``alpha`` (H x W) is the instance's coverage; types whose parameters depend on the instance's
    shape read it. ``ranges``: the config's ``blur`` section (its ranges are checked there).
    """
    entry = blur_type(kind)
    extent_px = float(extent_px)
    if not (math.isfinite(extent_px) and extent_px >= 0):
        raise BlurgenError(f"blur extent must be a finite number of pixels >= 0, got {extent_px}")
    alpha = np.asarray(alpha)
    if alpha.ndim != 2:
        raise BlurgenError(f"alpha must be an H x W array, got shape {alpha.shape}")
    params: dict = {"type": kind, "extent_px": extent_px}
    params.update(entry.impl.draw(rng, extent_px, alpha, ranges))
    return params


def psf_for(params: Mapping) -> np.ndarray:
    """PSF kernel of a space-invariant type (one with a ``path``)."""
    path = getattr(blur_type(params["type"]).impl, "path", None)
    if path is None:
        raise BlurgenError(f"blur type {params['type']!r} has no single PSF")
    return motion.path_psf(path(params))


def blur_reach(params: Mapping) -> int:
    """How far (px) an instance's blur can carry its content, with a 2 px margin: the path, or
    more where the type says so (rolling: its row shifts)."""
    reach = getattr(blur_type(params["type"]).impl, "reach", None)
    distance = reach(params) if reach else float(params["extent_px"])
    return int(np.ceil(distance)) + 2


def source_extent(params: Mapping, shape: tuple[int, int]) -> float | np.ndarray:
    """Motion extent (px) of the content that sits at each pixel at mid-exposure (the sharp
    image): ``extent_px`` for a type whose every point travels the same path, or the type's
    own map (zoom: it grows with the distance from the centre). ``shape``: the window's H, W."""
    own = getattr(blur_type(params["type"]).impl, "source_extent", None)
    return own(params, shape) if own else float(params["extent_px"])


def in_window(params: Mapping, x0: int, y0: int) -> dict:
    """``params`` for the window whose top-left pixel is (x0, y0): absolute positions move."""
    move = getattr(blur_type(params["type"]).impl, "in_window", None)
    return move(params, x0, y0) if move else dict(params)


def apply_blur(params: Mapping, foreground: np.ndarray, alpha: np.ndarray) -> BlurResult:
    """Blur a premultiplied linear foreground (H x W x C, or H x W) and its alpha (H x W).

    The same operator blurs foreground and alpha, so ``F_b + (1 - a_b) * B`` is the right
    composite. Only content where alpha > 0 is blurred (premultiplied: F is 0 elsewhere); the
    result depends only on ``params`` and the inputs. Zero motion (``extent_px`` 0) or an empty
    alpha returns copies of the inputs, bit-exact, with a zero extent map.
    """
    entry = blur_type(params.get("type"))
    fg = np.asarray(foreground, dtype=np.float32)
    alpha = np.asarray(alpha, dtype=np.float32)
    if alpha.ndim != 2 or fg.ndim not in (2, 3) or fg.shape[:2] != alpha.shape:
        raise BlurgenError(f"foreground {np.shape(foreground)} and alpha {np.shape(alpha)} must be "
                           "H x W x C (or H x W) and H x W with the same H and W")
    bbox = bbox_of(alpha)
    if float(params["extent_px"]) == 0.0 or bbox is None:
        return BlurResult(fg.copy(), alpha.copy(), np.zeros(alpha.shape, np.float32))
    # OpenCV returns single-channel images as H x W: work on those, restore the axis at the end.
    single = fg.ndim == 3 and fg.shape[2] == 1
    result = entry.impl.apply(params, fg[..., 0] if single else fg, alpha, bbox)
    if single:
        result = BlurResult(result.foreground[..., None], result.alpha, result.extent)
    return result
