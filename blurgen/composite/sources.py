"""Source photos of ``blurgen composite`` and their instance masks.

A source is a handle (:class:`SourceRef`: an image file below the images folder, or a numbered
procedural photo) that planning sorts and splits cheaply; :func:`load_source` turns it into
pixels and instance masks (:class:`SourceData`) through a :class:`MaskSource`, whose ``load``
gives a source's pixels and masks: SAM's automatic mask generator (:mod:`blurgen.composite.sam`)
or a folder of mask files (:mod:`blurgen.composite.masks`), both :class:`PhotoMasks` that read
the photo file and add its masks, or the procedural photos, painted with their exact masks
(:mod:`blurgen.composite.procedural`). :mod:`blurgen.composite.mask_sources` picks one for a
config. Those modules import this one, never the other way round. Whatever parts the mask source
separates (faces, hands, hair for SAM on portraits) are the instances; nothing here merges or
splits them.

A source that cannot be used (unreadable image, mask of the wrong size, no mask file) raises
:class:`SkipSource` with a short reason the caller counts and reports; errors in the user's
setup as a whole (no images at all, a missing folder) raise :class:`BlurgenError`.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

from blurgen.color import srgb_to_linear
from blurgen.composite.orientation import exif_orientation
from blurgen.errors import BlurgenError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PROCEDURAL_PREFIX = "procedural-"
# Fully transparent pixels of RGBA sources are shown over this grey: sRGB 0.5 (8-bit 128), a
# neutral mid tone, composited in linear light.
ALPHA_BACKDROP_SRGB = 0.5


@dataclass(frozen=True)
class SourceRef:
    """Cheap, picklable handle of one source photo."""

    source_id: str      # file path relative to the images folder (POSIX), or "procedural-00007"
    path: Path | None   # None for procedural photos
    index: int          # position in the sorted list (the procedural photo's number)

    @property
    def procedural(self) -> bool:
        return self.path is None


@dataclass
class SourceData:
    """One loaded source: linear RGB pixels and its instance masks after the area filter."""

    source_id: str
    image: np.ndarray          # HxWx3 float32 linear light RGB in [0, 1]
    masks: np.ndarray          # NxHxW bool instance masks (N may be 0)
    mask_names: list[str]      # one per mask: "sam-3", "label-12", "hand.png", "procedural-face"
    dropped: dict[str, int] = field(default_factory=dict)  # masks left out, by reason


class SkipSource(Exception):
    """This source cannot be used; ``reason`` is short, fixed text to count skips by."""

    def __init__(self, reason: str, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(f"{reason}: {detail}" if detail else reason)


class MaskSource(Protocol):
    """Anything that gives the pixels and instance masks of a source."""

    def load(self, ref: SourceRef) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """HxWx3 float32 linear image, NxHxW bool masks and one name per mask of ``ref``, or
        SkipSource."""
        ...


def list_image_files(images_dir: Path) -> list[SourceRef]:
    """Every JPEG/PNG below ``images_dir`` (recursive, sorted by relative POSIX path).

    Hidden files and folders (names starting with a dot) are left out: they are editor and
    tool leftovers, and blurgen's own temporary files look like that too.
    """
    images_dir = Path(images_dir)
    if not images_dir.is_dir():
        raise BlurgenError(f"images folder {images_dir} does not exist or is not a folder")
    found = []
    for folder, dirs, files in os.walk(images_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        rel = Path(folder).relative_to(images_dir)
        found.extend((rel / f).as_posix() for f in files
                     if f.lower().endswith(IMAGE_SUFFIXES) and not f.startswith("."))
    if not found:
        raise BlurgenError(f"no images (.jpg, .jpeg, .png) found in {images_dir}")
    return [SourceRef(rel, images_dir / rel, i) for i, rel in enumerate(sorted(found))]


def procedural_refs(count: int) -> list[SourceRef]:
    """Handles of the first ``count`` procedural photos."""
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    return [SourceRef(f"{PROCEDURAL_PREFIX}{i:05d}", None, i) for i in range(count)]


def read_file_bytes(path: Path) -> bytes:
    """The bytes of the image file at ``path``, or SkipSource."""
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise SkipSource("unreadable image", f"{path}: {exc.strerror or exc}") from None


def decode_image(data: bytes, path: Path) -> np.ndarray:
    """Decode the bytes ``data`` of the image file ``path`` as stored: 8/16-bit, 1-4 channels
    (BGR order), or SkipSource."""
    # JPEGs: IMREAD_COLOR applies the EXIF orientation (IMREAD_UNCHANGED would not), so the
    # picture stands as viewers show it; JPEGs have no alpha and 8 bits, nothing is lost.
    # Other files: IMREAD_UNCHANGED keeps 16 bits and alpha.
    flags = cv2.IMREAD_COLOR if data[:2] == b"\xff\xd8" else cv2.IMREAD_UNCHANGED
    image = cv2.imdecode(np.frombuffer(data, np.uint8), flags) if data else None
    if image is None:
        raise SkipSource("unreadable image", f"{path}: not a decodable JPEG or PNG")
    if image.dtype not in (np.uint8, np.uint16):
        raise SkipSource("unsupported image depth", f"{path}: {image.dtype} samples (8 or 16 bits expected)")
    if image.ndim == 3 and image.shape[2] not in (1, 2, 3, 4):
        raise SkipSource("unsupported image channels", f"{path}: {image.shape[2]} channels")
    if image.shape[0] == 0 or image.shape[1] == 0:
        raise SkipSource("unreadable image", f"{path}: empty image")
    return image


def read_image_file(path: Path) -> np.ndarray:
    """Decode an image file as stored: 8/16-bit, 1-4 channels (BGR order), or SkipSource."""
    return decode_image(read_file_bytes(path), path)


def load_image_linear(path: Path) -> np.ndarray:
    """An image file as HxWx3 float32 linear-light RGB in [0, 1], or SkipSource.

    8- and 16-bit samples are decoded from sRGB exactly (``blurgen.color``); gray becomes three
    equal channels. Alpha (RGBA, gray+alpha): the picture is composited over a neutral grey
    (``ALPHA_BACKDROP_SRGB``) in linear light. Ignoring alpha would show whatever colour the
    editor left under fully transparent pixels (often black, often leftovers of a cut-out),
    which SAM and the blur would then treat as content; a flat grey is plain background to both.
    """
    return linear_rgb(read_image_file(path))


def linear_rgb(image: np.ndarray) -> np.ndarray:
    """A decoded image (:func:`decode_image`) as HxWx3 float32 linear-light RGB in [0, 1]
    (see load_image_linear)."""
    alpha = None
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] in (2, 4):  # OpenCV gives BGRA for gray+alpha PNGs; 2 kept for safety
        alpha = image[:, :, -1].astype(np.float32) / np.float32(np.iinfo(image.dtype).max)
        image = image[:, :, :-1]
    if image.shape[2] == 1:
        rgb = np.repeat(image, 3, axis=2)
    else:
        rgb = image[:, :, ::-1]  # OpenCV's BGR to RGB
    linear = srgb_to_linear(np.ascontiguousarray(rgb))
    if alpha is not None:
        backdrop = np.float32(srgb_to_linear(np.array(ALPHA_BACKDROP_SRGB, np.float32)))
        linear = linear * alpha[..., None] + backdrop * (1.0 - alpha[..., None])
    return linear.astype(np.float32, copy=False)


def filter_by_area(masks: np.ndarray, names: list[str], min_area: float, max_area: float,
                   dropped: Counter | None = None) -> tuple[np.ndarray, list[str]]:
    """Keep masks whose area, as a fraction of the image, lies in [min_area, max_area].

    Empty masks always go. ``dropped`` (if given) counts what went, by reason: "empty mask",
    "mask below min area", "mask above max area".
    """
    if not 0.0 <= min_area <= max_area <= 1.0:
        raise ValueError(f"need 0 <= min_area <= max_area <= 1, got {min_area}, {max_area}")
    if len(masks) != len(names):
        raise ValueError(f"{len(masks)} masks but {len(names)} names")
    n, h, w = masks.shape
    if n == 0:
        return masks, list(names)
    area = np.count_nonzero(masks.reshape(n, -1), axis=1)
    fraction = area / float(h * w)
    empty = area == 0
    small = ~empty & (fraction < min_area)
    large = ~empty & (fraction > max_area)
    if dropped is not None:
        for reason, hit in (("empty mask", empty), ("mask below min area", small), ("mask above max area", large)):
            if hit.any():
                dropped[reason] += int(hit.sum())
    keep = ~(empty | small | large)
    return masks[keep], [name for name, k in zip(names, keep) if k]


class PhotoMasks:
    """Base of the mask sources of photo files: ``load`` reads the photo, then asks
    :meth:`masks_for` (which subclasses define) for its masks and checks their size."""

    def masks_for(self, ref: SourceRef, image_linear: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """NxHxW bool masks of ``ref`` (H, W: ``image_linear``'s) and one name per mask."""
        raise NotImplementedError

    def masks_for_photo(self, ref: SourceRef, image_linear: np.ndarray,
                        orientation: int) -> tuple[np.ndarray, list[str]]:
        """:meth:`masks_for`, told the EXIF ``orientation`` (1-8) the decoder applied to the
        photo, read from the bytes ``load`` decoded. Masks made on the upright picture (SAM's)
        need not know; mask files do (FolderMasks overrides this)."""
        return self.masks_for(ref, image_linear)

    def load(self, ref: SourceRef) -> tuple[np.ndarray, np.ndarray, list[str]]:
        if ref.path is None:
            raise ValueError(f"{ref.source_id}: {type(self).__name__} needs an image file")
        # One read: the pixels and the orientation the decoder gave them come from the same bytes.
        data = read_file_bytes(ref.path)
        image = linear_rgb(decode_image(data, ref.path))
        found, names = self.masks_for_photo(ref, image, exif_orientation(data))
        found = np.asarray(found)
        if found.ndim != 3 or found.shape[1:] != image.shape[:2]:
            size = f"{found.shape[2]}x{found.shape[1]}" if found.ndim == 3 else f"shape {found.shape}"
            raise SkipSource("mask size mismatch", f"{ref.source_id}: masks of {size} for a "
                                                   f"{image.shape[1]}x{image.shape[0]} image")
        return image, found.astype(bool, copy=False), list(names)


def load_source(ref: SourceRef, masks: MaskSource, *, min_area: float = 0.0, max_area: float = 1.0) -> SourceData:
    """Pixels and area-filtered instance masks of ``ref``; SkipSource if it cannot be used.

    ``min_area`` and ``max_area`` are fractions of the image area.
    """
    dropped: Counter = Counter()
    image, found, names = masks.load(ref)
    found, names = filter_by_area(found, list(names), min_area, max_area, dropped)
    return SourceData(ref.source_id, image, found, names, dict(dropped))
