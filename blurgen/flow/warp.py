"""Backward warping along a flow field, and where such a warp is defined.

Convention (the project's): flow is (u, v) = (dx, dy) in pixels, x right, y down, pixel centres
at integer coordinates. Backward warping samples ``image`` at ``x + flow(x)``, so with the
forward flow of a pair, ``warp_backward(last, flow_fwd)`` reconstructs ``first`` wherever the
point stays visible: ``first(x) ≈ last(x + flow_fwd(x))``.

Sampling is OpenCV's ``remap`` (bilinear by default). Its bilinear weights are fixed point with
1/32 pixel resolution, i.e. positions are rounded to 1/64 px; that is far below what an image
or a flow field of this kind resolves, and it keeps warping a 640x480 image at about a
millisecond.
"""

from __future__ import annotations

import cv2
import numpy as np

_INTERPOLATION = {"linear": cv2.INTER_LINEAR, "nearest": cv2.INTER_NEAREST, "cubic": cv2.INTER_CUBIC}
_BORDER = {"replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT,
           "reflect": cv2.BORDER_REFLECT_101, "wrap": cv2.BORDER_WRAP}


def pixel_grid(height: int, width: int, dtype=np.float32) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (x, y), each ``height`` x ``width``."""
    return np.meshgrid(np.arange(width, dtype=dtype), np.arange(height, dtype=dtype))


def sample(image: np.ndarray, map_x: np.ndarray, map_y: np.ndarray, *, interpolation: str = "linear",
           border: str = "replicate", fill: float = 0.0) -> np.ndarray:
    """``image`` sampled at the points (``map_x``, ``map_y``); the output has the maps' size.

    Keeps the channel layout of ``image`` (H x W, or H x W x C with any C, including 1) and its
    dtype for float32/float64/uint8 input; bool is sampled as uint8 and returned as bool
    (use ``interpolation="nearest"`` for masks you want to stay binary).
    """
    image = np.asarray(image)
    was_bool = image.dtype == np.bool_
    src = image.view(np.uint8) if was_bool else image
    if src.dtype not in (np.float32, np.float64, np.uint8, np.uint16):
        src = src.astype(np.float32)
    map_x = np.asarray(map_x, np.float32)
    map_y = np.asarray(map_y, np.float32)
    # Non-finite positions would be undefined in remap; send them far outside (the border rule
    # then applies; callers mark them invalid via in_bounds / their own masks).
    bad = ~(np.isfinite(map_x) & np.isfinite(map_y))
    if bad.any():
        map_x, map_y = np.where(bad, -1e6, map_x).astype(np.float32), np.where(bad, -1e6, map_y).astype(np.float32)
    if map_x.shape != map_y.shape:
        raise ValueError(f"map_x and map_y differ in shape: {map_x.shape} vs {map_y.shape}")
    shape = map_x.shape
    if map_x.ndim != 2 or max(shape) >= 32000:
        # remap wants 2D maps under 32767 a side: points of any other shape go through as rows
        # of 1024 (padded), and come back in their shape.
        n = map_x.size
        rows = -(-max(n, 1) // 1024)
        map_x = np.pad(map_x.reshape(-1), (0, rows * 1024 - n)).reshape(rows, 1024)
        map_y = np.pad(map_y.reshape(-1), (0, rows * 1024 - n)).reshape(rows, 1024)
    channels = src.shape[2:]
    out = cv2.remap(np.ascontiguousarray(src), map_x, map_y, _INTERPOLATION[interpolation],
                    borderMode=_BORDER[border], borderValue=(fill, fill, fill, fill))
    # Back to the maps' shape; this also restores a single channel that OpenCV drops.
    out = out.reshape((-1,) + channels)[:int(np.prod(shape))].reshape(shape + channels)
    return out.astype(bool) if was_bool else out


def in_bounds(flow: np.ndarray) -> np.ndarray:
    """H x W bool: ``x + flow(x)`` is finite and lies inside the image, where bilinear sampling
    needs no border rule (0 <= x' <= W - 1, 0 <= y' <= H - 1)."""
    h, w = flow.shape[:2]
    gx, gy = pixel_grid(h, w, np.float64)
    with np.errstate(invalid="ignore"):
        x = gx + flow[..., 0]
        y = gy + flow[..., 1]
        return np.isfinite(x) & np.isfinite(y) & (x >= 0) & (x <= w - 1) & (y >= 0) & (y <= h - 1)


def warp_backward(image: np.ndarray, flow: np.ndarray, *, interpolation: str = "linear",
                  border: str = "replicate", fill: float = 0.0) -> np.ndarray:
    """``image`` sampled at ``x + flow(x)`` for every pixel ``x`` (same size as ``flow``).

    Points outside the image follow ``border`` (edge pixels repeated by default); see
    ``in_bounds`` / ``warp_backward_valid`` for where the result is defined.
    """
    if flow.ndim != 3 or flow.shape[2] != 2:
        raise ValueError(f"flow must be H x W x 2, got shape {flow.shape}")
    h, w = flow.shape[:2]
    gx, gy = pixel_grid(h, w)
    return sample(image, gx + flow[..., 0], gy + flow[..., 1], interpolation=interpolation,
                  border=border, fill=fill)


def warp_backward_valid(image: np.ndarray, flow: np.ndarray, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """``(warp_backward(image, flow), in_bounds(flow))``."""
    return warp_backward(image, flow, **kwargs), in_bounds(flow)


def forward_backward_consistent(flow_ab: np.ndarray, flow_ba: np.ndarray, *, alpha: float = 0.01,
                                beta: float = 0.5) -> np.ndarray:
    """H x W bool: where following ``flow_ab`` and then ``flow_ba`` comes back to the start.

    The usual occlusion test (Sundaram, Brox and Keutzer 2010): with ``w = flow_ba`` sampled at
    ``x + flow_ab(x)``, consistent iff ``|flow_ab + w|^2 <= alpha (|flow_ab|^2 + |w|^2) + beta``.
    A point that becomes occluded lands on the occluder, whose flow does not lead back.
    Points leaving the image are not consistent.
    """
    back = warp_backward(flow_ba, flow_ab)
    with np.errstate(invalid="ignore"):
        err = np.sum((flow_ab + back) ** 2, axis=2)
        bound = alpha * (np.sum(flow_ab ** 2, axis=2) + np.sum(back ** 2, axis=2)) + beta
        return in_bounds(flow_ab) & (err <= bound)
