"""Frame pairs with known flow supplied by the user (``blurgen flowpairs synth --pairs DIR``).

A pair is found by its flow file (``.flo``, Middlebury format), searched recursively under
the directory; the images lie next to it. Three naming layouts are recognised:

===============  ==========================  ==========================  =====================  ========================
layout           first image                 last image                  forward flow           backward flow (optional)
===============  ==========================  ==========================  =====================  ========================
blurgen          ``NAME_1.EXT``              ``NAME_2.EXT``              ``NAME_fwd.flo``       ``NAME_bwd.flo``
FlyingChairs     ``NAME_img1.EXT``           ``NAME_img2.EXT``           ``NAME_flow.flo``      --
FlyingChairs2    ``NAME-img_0.EXT``          ``NAME-img_1.EXT``          ``NAME-flow_01.flo``   ``NAME-flow_10.flo``
===============  ==========================  ==========================  =====================  ========================

``EXT`` is png, ppm, jpg/jpeg, bmp, tif/tiff or webp. 8- and 16-bit images are sRGB-encoded
and decoded to linear light; float images (e.g. float TIFF) are taken as linear already. Flow
is (u, v) = (dx, dy) px with ``first(x) ≈ last(x + flow_fwd(x))``, which is what these
datasets store.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from blurgen.color import srgb_to_linear
from blurgen.errors import BlurgenError

IMAGE_EXTENSIONS = (".png", ".ppm", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")

# (layout, forward-flow suffix, first-image suffix, last-image suffix, backward-flow suffix)
LAYOUTS = (
    ("blurgen", "_fwd.flo", "_1", "_2", "_bwd.flo"),
    ("flyingchairs", "_flow.flo", "_img1", "_img2", None),
    ("flyingchairs2", "-flow_01.flo", "-img_0", "-img_1", "-flow_10.flo"),
)


class SkipPair(BlurgenError):
    """A listed pair that cannot be used (unreadable file, sizes that disagree); ``reason`` says why."""

    def __init__(self, name: str, reason: str):
        super().__init__(f"pair {name}: {reason}")
        self.name = name
        self.reason = reason


@dataclass(frozen=True)
class UserPair:
    """Paths of one pair; ``first``/``last`` are None when no image with a known extension exists."""

    name: str  # path of the pair's stem relative to the pairs directory, "/"-separated
    layout: str
    first: Path | None
    last: Path | None
    flow_fwd: Path
    flow_bwd: Path | None


def _find_image(stem: Path) -> Path | None:
    for ext in IMAGE_EXTENSIONS:
        for candidate in (stem.with_name(stem.name + ext), stem.with_name(stem.name + ext.upper())):
            if candidate.is_file():
                return candidate
    return None


def list_user_pairs(pairs_dir: Path) -> list[UserPair]:
    """Every pair under ``pairs_dir`` (recursively), sorted by name.

    A flow file of a known layout makes a pair even if its images are missing (loading it then
    raises ``SkipPair``, so the run reports it rather than silently skipping it). Raises
    ``BlurgenError`` if the directory does not exist or holds no pair.
    """
    pairs_dir = Path(pairs_dir)
    if not pairs_dir.is_dir():
        raise BlurgenError(f"pairs directory {pairs_dir} does not exist or is not a directory")
    pairs = []
    for flow_path in sorted(pairs_dir.rglob("*.flo")):
        for layout, fwd_suffix, first_suffix, last_suffix, bwd_suffix in LAYOUTS:
            if not flow_path.name.endswith(fwd_suffix) or len(flow_path.name) == len(fwd_suffix):
                continue
            stem = flow_path.with_name(flow_path.name[: -len(fwd_suffix)])
            bwd = stem.with_name(stem.name + bwd_suffix) if bwd_suffix else None
            pairs.append(UserPair(
                name=stem.relative_to(pairs_dir).as_posix(), layout=layout,
                first=_find_image(stem.with_name(stem.name + first_suffix)),
                last=_find_image(stem.with_name(stem.name + last_suffix)),
                flow_fwd=flow_path, flow_bwd=bwd if bwd is not None and bwd.is_file() else None))
            break
    if not pairs:
        raise BlurgenError(
            f"no frame pairs in {pairs_dir}: expected NAME_1.png NAME_2.png NAME_fwd.flo [NAME_bwd.flo], "
            "FlyingChairs (NAME_img1.ppm NAME_img2.ppm NAME_flow.flo) or FlyingChairs2 "
            "(NAME-img_0.png NAME-img_1.png NAME-flow_01.flo [NAME-flow_10.flo])")
    return sorted(pairs, key=lambda p: p.name)


def read_linear_image(path: Path) -> np.ndarray | None:
    """An image file as H x W x 3 float32 linear RGB; None if OpenCV cannot read it."""
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None or raw.size == 0:
        return None
    if raw.ndim == 2:
        raw = raw[..., None]
    if raw.shape[2] == 1:
        raw = np.repeat(raw, 3, axis=2)
    else:  # OpenCV gives BGR(A); drop alpha, reorder to RGB
        raw = raw[..., 2::-1]
    raw = np.ascontiguousarray(raw)
    if raw.dtype in (np.uint8, np.uint16):
        return srgb_to_linear(raw)
    return raw.astype(np.float32)


def _read_flow(pair: UserPair, path: Path) -> np.ndarray:
    try:
        flow = cv2.readOpticalFlow(str(path))
    except cv2.error:
        flow = None
    if flow is None or flow.size == 0 or flow.ndim != 3 or flow.shape[2] != 2:
        raise SkipPair(pair.name, f"cannot read flow file {path} (expected Middlebury .flo)")
    return flow.astype(np.float32)


def load_user_pair(pair: UserPair) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """``(first, last, flow_fwd, flow_bwd or None)``: images H x W x 3 float32 linear RGB,
    flows H x W x 2 float32. Raises ``SkipPair`` for a missing or unreadable file, or sizes
    that disagree."""
    images = []
    for which, path in (("first", pair.first), ("last", pair.last)):
        if path is None:
            raise SkipPair(pair.name, f"no {which} image (extensions: {', '.join(IMAGE_EXTENSIONS)})")
        image = read_linear_image(path)
        if image is None:
            raise SkipPair(pair.name, f"cannot read image {path}")
        images.append(image)
    first, last = images
    if first.shape != last.shape:
        raise SkipPair(pair.name, f"first and last images differ in size: {first.shape[1]}x{first.shape[0]} "
                                  f"vs {last.shape[1]}x{last.shape[0]}")
    flow_fwd = _read_flow(pair, pair.flow_fwd)
    flow_bwd = _read_flow(pair, pair.flow_bwd) if pair.flow_bwd is not None else None
    for name, flow in (("forward", flow_fwd), ("backward", flow_bwd)):
        if flow is not None and flow.shape[:2] != first.shape[:2]:
            raise SkipPair(pair.name, f"{name} flow is {flow.shape[1]}x{flow.shape[0]} but the images are "
                                      f"{first.shape[1]}x{first.shape[0]}")
    return first, last, flow_fwd, flow_bwd
