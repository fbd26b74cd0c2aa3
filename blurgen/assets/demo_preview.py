"""A contact sheet of the demo set: each object drawn in numpy/OpenCV, then the backgrounds.

Objects are drawn without Blender: a 3/4 view, orthographic projection, painter's algorithm
(triangles filled far to near with ``cv2.fillPoly``), Lambert shading of face normals, each
face coloured by its texture at the face's UV centroid. Large faces are split first so that
the texture pattern shows on flat parts too (a box side is two triangles).
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np

from blurgen.assets.mesh_build import Mesh, rot_x, rot_y
from blurgen.viz.sheet import BACKGROUND, draw_label, fit_width, tile_grid

TILE = 160  # object tiles are TILE x TILE; background thumbnails TILE wide
PAD = 4  # tile_grid's default padding
SUPERSAMPLE = 2
MAX_EDGE = 0.06  # split faces longer than this (object diagonal is 1) for the texture to show
MAX_PREVIEW_FACES = 12_000
_LIGHT = np.array([-0.45, 0.55, 0.7]) / np.linalg.norm([-0.45, 0.55, 0.7])


def _split_large(tris: np.ndarray, max_edge: float) -> np.ndarray:
    """Midpoint-split triangles (rows of 3 corners x (x, y, z, u, v)) until edges <= max_edge."""
    while len(tris) < MAX_PREVIEW_FACES:
        edges = np.linalg.norm(tris[:, [1, 2, 0], :3] - tris[:, :, :3], axis=2).max(axis=1)
        big = edges > max_edge
        if not big.any():
            break
        a, b, c = tris[big, 0], tris[big, 1], tris[big, 2]
        ab, bc, ca = (a + b) / 2, (b + c) / 2, (c + a) / 2
        # Same winding as the parent in all four children.
        children = np.stack([np.stack(t, axis=1) for t in ((a, ab, ca), (ab, b, bc), (ca, bc, c), (ab, bc, ca))])
        tris = np.concatenate([tris[~big], children.reshape(-1, 3, 5)])
    return tris


def render_object(mesh: Mesh, texture: np.ndarray, size: int = TILE,
                  yaw: float = 215.0, pitch: float = 25.0) -> np.ndarray:
    """An RGB uint8 ``size`` x ``size`` picture of a textured mesh from a 3/4 view above."""
    tris = np.concatenate([mesh.vertices[mesh.faces], mesh.uvs[mesh.faces]], axis=2)
    tris = _split_large(tris, MAX_EDGE)
    rot = rot_x(pitch) @ rot_y(yaw)  # object front (-z) turned towards the viewer (+z), seen from above
    pos = tris[:, :, :3] @ rot.T
    normals = np.cross(pos[:, 1] - pos[:, 0], pos[:, 2] - pos[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    keep = lengths > 1e-12
    pos, tris, normals = pos[keep], tris[keep], normals[keep] / lengths[keep, None]
    # Two-sided light: the inside of a mug or lamp shade faces away from its outward normal.
    shade = 0.28 + 0.72 * np.abs(normals @ _LIGHT)

    h, w = texture.shape[:2]
    uv = tris[:, :, 3:].mean(axis=1)
    cols = np.clip((uv[:, 0] * w).astype(int), 0, w - 1)
    rows = np.clip(((1.0 - uv[:, 1]) * h).astype(int), 0, h - 1)  # OBJ: v = 0 is the bottom row
    colours = texture[rows, cols].astype(np.float32) * shade[:, None]

    big = size * SUPERSAMPLE
    canvas = np.empty((big, big, 3), np.uint8)
    canvas[...] = _backdrop(big)
    extent = np.abs(pos[:, :, :2]).max() or 1.0
    scale = big * 0.45 / extent
    pts = np.empty(pos.shape[:2] + (2,), np.int32)
    pts[:, :, 0] = np.round(big / 2 + pos[:, :, 0] * scale)
    pts[:, :, 1] = np.round(big / 2 - pos[:, :, 1] * scale)
    order = np.argsort(pos[:, :, 2].mean(axis=1), kind="stable")  # far (small z) first
    fills = np.clip(colours[order] + 0.5, 0, 255).astype(int).tolist()
    for tri, fill in zip(pts[order], fills):
        cv2.fillPoly(canvas, [tri], fill)
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def _backdrop(size: int) -> np.ndarray:
    """A soft vertical grey gradient behind the objects."""
    t = np.linspace(0.0, 1.0, size, dtype=np.float32)[:, None, None]
    top, bottom = np.array([70, 72, 78], np.float32), np.array([38, 39, 44], np.float32)
    return np.broadcast_to(top * (1 - t) + bottom * t, (size, size, 3)).astype(np.uint8)


def object_tile(mesh: Mesh, texture: np.ndarray, label: Sequence[str]) -> np.ndarray:
    """A rendered object with its label (category, id prefix) in the top-left corner."""
    return draw_label(render_object(mesh, texture), list(label))


def background_tile(image: np.ndarray, label: Sequence[str]) -> np.ndarray:
    """A background thumbnail, ``TILE`` wide, labelled."""
    thumb, _ = fit_width(image, TILE)
    return draw_label(thumb, list(label))


def vstack(images: Sequence[np.ndarray], background=BACKGROUND) -> np.ndarray:
    """Images one above the other, left-aligned; narrower ones padded with ``background``."""
    width = max(im.shape[1] for im in images)
    rows = []
    for im in images:
        row = np.empty((im.shape[0], width, 3), np.uint8)
        row[...] = background
        row[:, :im.shape[1]] = im
        rows.append(row)
    return np.concatenate(rows, axis=0)


def preview_sheet(object_tiles: Sequence[np.ndarray], background_tiles: Sequence[np.ndarray],
                  cols: int) -> np.ndarray:
    """Objects in rows of ``cols`` (one category per row when cols = objects per category), then backgrounds."""
    parts = [tile_grid(list(object_tiles), cols)] if object_tiles else []
    if background_tiles:
        parts.append(tile_grid(list(background_tiles), cols)[PAD:])  # the grid above already padded
    return vstack(parts)


def preview_size(n_objects: int, n_backgrounds: int, cols: int, bg_height: int) -> tuple[int, int]:
    """(height, width) of :func:`preview_sheet` for these counts, ``bg_height`` the thumbnails' height."""
    def grid(n: int, cell_h: int) -> tuple[int, int]:
        c = max(1, min(cols, n))
        r = -(-n // c)
        return r * (cell_h + PAD) + PAD, c * (TILE + PAD) + PAD
    sizes = []
    if n_objects:
        sizes.append(grid(n_objects, TILE))
    if n_backgrounds:
        h, w = grid(n_backgrounds, bg_height)
        sizes.append((h - PAD, w))
    return sum(s[0] for s in sizes), max(s[1] for s in sizes)
