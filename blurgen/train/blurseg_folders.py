"""Outside data for ``blurgen evaluate blur-seg``, as users have it (paper §4.1).

- ``--images DIR --masks DIR`` (:func:`mask_folder_items`, e.g. CUHK's motion-blur subset): every
  JPEG/PNG below DIR (recursive, as ``blurgen composite --images`` lists them) with the binary
  blur mask of the same relative path and stem in the masks folder (``a/b.jpg`` ->
  ``masks/a/b.png``, else ``.jpg``/``.jpeg``); a mask pixel is blur when its brightest channel is
  above half its range. A missing mask or a mask of another size than its image is one line,
  found before any work (every pair is decoded once up front).
- ``--blurred DIR --sharp DIR`` (:func:`blurred_sharp_items`, e.g. GoPro or NFS): the images of
  one folder are labelled blurred, of the other sharp; image-level metrics only.

Images are read as the composite reads photos (EXIF orientation applied, 16-bit and alpha
handled; ``blurgen.composite.sources``) and turned into sRGB uint8, what the model was trained on.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import numpy as np

from blurgen.color import linear_to_srgb_uint8
from blurgen.composite.masks import binary_mask
from blurgen.composite.sources import IMAGE_SUFFIXES, SkipSource, list_image_files, load_image_linear, read_image_file
from blurgen.errors import BlurgenError
from blurgen.train.blurseg import EvalItem


def read_rgb(path: Path) -> np.ndarray:
    """An image file as sRGB uint8 RGB (H, W, 3); one line when it cannot be read."""
    try:
        return linear_to_srgb_uint8(load_image_linear(path))
    except SkipSource as exc:
        raise BlurgenError(f"cannot read {exc.detail or path}") from None


def read_mask(path: Path) -> np.ndarray:
    """A binary blur-mask file as bool (H, W); one line when it cannot be read."""
    try:
        return binary_mask(read_image_file(path))
    except SkipSource as exc:
        raise BlurgenError(f"cannot read mask {exc.detail or path}") from None


def _mask_path(masks_dir: Path, relative: str) -> Path | None:
    rel = Path(relative)
    stem = rel.parent / rel.name[: len(rel.name) - len(rel.suffix)]
    for suffix in (".png", *IMAGE_SUFFIXES):
        candidate = masks_dir / stem.parent / (stem.name + suffix)
        if candidate.is_file():
            return candidate
    return None


def mask_pairs(images_dir: Path, masks_dir: Path) -> list[tuple[str, Path, Path]]:
    """(relative path, image file, mask file) of every image; one line for a missing or misfit mask."""
    images_dir, masks_dir = Path(images_dir), Path(masks_dir)
    if not masks_dir.is_dir():
        raise BlurgenError(f"masks folder {masks_dir} does not exist or is not a folder")
    pairs = []
    for ref in list_image_files(images_dir):
        mask = _mask_path(masks_dir, ref.source_id)
        if mask is None:
            stem = Path(ref.source_id).with_suffix(".png").as_posix()
            raise BlurgenError(f"no blur mask for {images_dir / ref.source_id}: expected {masks_dir / stem} "
                               "(a binary mask of the same relative path and stem)")
        pairs.append((ref.source_id, ref.path, mask))
    for relative, image_path, mask_path in pairs:
        shape, mask_shape = read_rgb(image_path).shape[:2], read_mask(mask_path).shape
        if shape != mask_shape:
            raise BlurgenError(f"blur mask {mask_path} is {mask_shape[1]}x{mask_shape[0]} but its image "
                               f"{image_path} is {shape[1]}x{shape[0]}: masks must match their images")
    return pairs


def mask_folder_items(pairs: list[tuple[str, Path, Path]]) -> Iterator[EvalItem]:
    """The pairs as items to score (image label: any mask pixel set)."""
    for relative, image_path, mask_path in pairs:
        mask = read_mask(mask_path)
        yield EvalItem(relative, read_rgb(image_path), mask, bool(mask.any()))


def labelled_files(blurred_dir: Path, sharp_dir: Path) -> list[tuple[str, Path, bool]]:
    """(id, file, blurred?) of both folders' images: ``blurred/<path>`` then ``sharp/<path>``."""
    files = [(f"blurred/{ref.source_id}", ref.path, True) for ref in list_image_files(Path(blurred_dir))]
    return files + [(f"sharp/{ref.source_id}", ref.path, False) for ref in list_image_files(Path(sharp_dir))]


def blurred_sharp_items(files: list[tuple[str, Path, bool]]) -> Iterator[EvalItem]:
    for sample_id, path, blurred in files:
        yield EvalItem(sample_id, read_rgb(path), None, blurred)
