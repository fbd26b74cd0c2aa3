"""Instance masks from a folder of mask files, laid out like the images folder.

For the image ``a/b.jpg`` (relative to the images folder) the masks folder holds either

* ``a/b.png``: a label image, 8 or 16 bits. 0 is background, every other value one instance
  ("label-<value>"). A colour label image (e.g. a palette PNG, which OpenCV decodes to colour)
  has one instance per colour other than black ("label-#rrggbb").
* ``a/b/``: a folder with one binary image per instance (any of .png, .jpg, .jpeg), named
  by its file name. A pixel is in when its value is above half the range (> 127 for 8 bits);
  colour files use their brightest channel.

Mask files are read as stored (they carry no EXIF rotation). For a JPEG photo with an EXIF
orientation other than 1, which is decoded upright, ``orientation`` (``sources.mask_orientation``)
says how its mask files were made: ``stored`` (on the stored pixels: they are turned upright
the same way) or ``upright`` (used as read); unset, such a photo is skipped with the counted
reason "rotated photo, mask orientation not set" (a 180° turn or a mirror keeps the size, so a
mismatch could not be detected). A missing or ambiguous entry, an unreadable file or a size
that differs from the image's makes the source a :class:`SkipSource`; empty instance masks are
passed on and dropped (and counted) by the area filter.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from blurgen.composite.orientation import MASK_ORIENTATIONS, photo_orientation, stored_shape, upright
from blurgen.composite.sources import IMAGE_SUFFIXES, PhotoMasks, SkipSource, SourceRef
from blurgen.errors import BlurgenError


def _read_mask_file(path: Path) -> np.ndarray:
    """A mask file as stored (8/16 bits, 1-4 channels), or SkipSource."""
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise SkipSource("unreadable mask", f"{path}: {exc.strerror or exc}") from None
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if image is None:
        raise SkipSource("unreadable mask", f"{path}: not a decodable image")
    if image.dtype not in (np.uint8, np.uint16):
        raise SkipSource("unreadable mask", f"{path}: {image.dtype} samples (8 or 16 bits expected)")
    return image


def _check_size(mask: np.ndarray, shape: tuple[int, int], path: Path) -> None:
    if mask.shape[:2] != shape:
        h, w = shape
        hint = (" (made on the photo turned the other way? see sources.mask_orientation)"
                if mask.shape[:2] == (w, h) else "")
        raise SkipSource("mask size mismatch", f"{path} is {mask.shape[1]}x{mask.shape[0]}, "
                                               f"expected {w}x{h}{hint}")


def label_masks(label: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Instance masks of a label image (2D gray or HxWxC colour; 0 / black is background)."""
    if label.ndim == 3:
        colour = label[:, :, :3]
        if colour.shape[2] == 1 or (np.array_equal(colour[:, :, 0], colour[:, :, 1])
                                    and np.array_equal(colour[:, :, 0], colour[:, :, 2])):
            label = colour[:, :, 0]
        else:
            # One integer per colour, so np.unique finds the instances; BGR -> RGB for the names.
            bits = 8 * label.dtype.itemsize
            rgb = colour[:, :, ::-1].astype(np.int64)
            packed = (rgb[:, :, 0] << (2 * bits)) | (rgb[:, :, 1] << bits) | rgb[:, :, 2]
            values = np.unique(packed)
            values = values[values != 0]
            digits = bits // 4
            mask_of = (packed[None] == values[:, None, None]) if len(values) else np.zeros((0,) + packed.shape, bool)
            names = []
            for v in values.tolist():
                r, g, b = v >> (2 * bits), (v >> bits) & ((1 << bits) - 1), v & ((1 << bits) - 1)
                names.append(f"label-#{r:0{digits}x}{g:0{digits}x}{b:0{digits}x}")
            return mask_of, names
    values = np.unique(label)
    values = values[values != 0]
    masks = label[None] == values[:, None, None] if len(values) else np.zeros((0,) + label.shape, bool)
    return masks, [f"label-{int(v)}" for v in values]


def binary_mask(image: np.ndarray) -> np.ndarray:
    """A binary instance mask file as bool: in above half the sample range, brightest colour channel."""
    if image.ndim == 3:
        image = image[:, :, :3].max(axis=2) if image.shape[2] >= 3 else image[:, :, 0]
    return image > np.iinfo(image.dtype).max // 2


class FolderMasks(PhotoMasks):
    """Mask source: one label image or one folder of binary masks per source image."""

    def __init__(self, masks_dir: Path, orientation: str | None = None) -> None:
        self.masks_dir = Path(masks_dir)
        if not self.masks_dir.is_dir():
            raise BlurgenError(f"masks folder {self.masks_dir} does not exist or is not a folder")
        if orientation not in (None, *MASK_ORIENTATIONS):
            raise BlurgenError(f"mask orientation must be one of {', '.join(MASK_ORIENTATIONS)} or unset, "
                               f"got {orientation!r}")
        self.orientation = orientation

    def paths_for(self, ref: SourceRef) -> tuple[Path, Path]:
        """(label image, instance folder) that may hold the masks of ``ref``."""
        rel = Path(ref.source_id)
        stem = rel.parent / rel.name[: len(rel.name) - len(rel.suffix)]  # "a/b.c.jpg" -> "a/b.c"
        folder = self.masks_dir / stem
        return folder.parent / (folder.name + ".png"), folder

    def masks_for(self, ref: SourceRef, image_linear: np.ndarray) -> tuple[np.ndarray, list[str]]:
        """The masks of ``ref``, its photo's EXIF orientation read from its file (``load`` reads
        it from the bytes it decoded instead)."""
        try:
            orientation = photo_orientation(ref.path) if ref.path is not None else 1
        except OSError as exc:
            raise SkipSource("unreadable image", f"{ref.path}: {exc.strerror or exc}") from None
        return self.masks_for_photo(ref, image_linear, orientation)

    def masks_for_photo(self, ref: SourceRef, image_linear: np.ndarray,
                        orientation: int) -> tuple[np.ndarray, list[str]]:
        label_path, folder = self.paths_for(ref)
        if ref.path is not None and label_path.exists() and label_path.resolve() == Path(ref.path).resolve():
            raise BlurgenError(f"masks folder {self.masks_dir} is the images folder: image {ref.source_id} "
                               "would be its own label image; keep masks in a folder of their own")
        shape = image_linear.shape[:2]
        has_label, has_folder = label_path.is_file(), folder.is_dir()
        if has_label and has_folder:
            raise SkipSource("ambiguous masks", f"both {label_path} and {folder}/ exist; keep one")
        if not (has_label or has_folder):
            raise SkipSource("no mask file", f"neither {label_path} nor {folder}/ exists")
        turn = self._turn(ref, orientation)
        expected = stored_shape(shape, turn)  # the shape of the mask files as read
        if has_label:
            label = _read_mask_file(label_path)
            _check_size(label, expected, label_path)
            return label_masks(upright(label, turn))
        files = sorted(p for p in folder.iterdir()
                       if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith("."))
        masks = np.zeros((len(files),) + shape, bool)
        for i, path in enumerate(files):
            image = _read_mask_file(path)
            _check_size(image, expected, path)
            masks[i] = upright(binary_mask(image), turn)
        return masks, [p.name for p in files]

    def _turn(self, ref: SourceRef, orientation: int) -> int:
        """The EXIF orientation to apply to ``ref``'s mask files (1: none) for a photo that the
        decoder turned by ``orientation``, or SkipSource when the photo is turned and the config
        does not say how its masks were made."""
        if orientation == 1 or self.orientation == "upright":
            return 1
        if self.orientation is None:
            raise SkipSource("rotated photo, mask orientation not set",
                             f"{ref.source_id} has EXIF orientation {orientation}: set sources.mask_orientation "
                             "to stored or upright (how its mask files were made)")
        return orientation
