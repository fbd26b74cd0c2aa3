"""EXIF orientation of JPEG photos, and turning mask files made on the stored pixels upright.

A JPEG may store its pixels sideways or mirrored and say so in its EXIF ``Orientation`` tag
(0x0112, values 1-8); OpenCV, like every viewer, turns such a photo upright when it decodes it
(:func:`blurgen.composite.sources.read_image_file`). A mask file has no such tag, so it may
have been made on either picture: the upright one (a tool that showed the photo as viewers do)
or the stored pixels (a tool that read them raw). ``sources.mask_orientation`` says which; the
transforms here are the ones OpenCV applies (tests check them against its decoder).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

MASK_ORIENTATIONS = ("stored", "upright")
ORIENTATION_TAG = 0x0112
# An EXIF block lives in APP1, at most 64 KiB, before the image data: the file's head holds it.
_HEAD_BYTES = 1 << 17


def photo_orientation(path: Path) -> int:
    """The EXIF orientation (1-8) of the JPEG at ``path``; 1 (as stored) for other files, for
    JPEGs without the tag, and for a tag whose value is not 1-8."""
    with open(path, "rb") as file:
        return exif_orientation(file.read(_HEAD_BYTES))


def exif_orientation(data: bytes) -> int:
    """The orientation tag of the JPEG whose first bytes are ``data`` (see photo_orientation)."""
    if data[:2] != b"\xff\xd8":
        return 1
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return 1  # not a marker: a damaged header, read as stored
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte before a marker
            pos += 1
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: no EXIF before the image data
            return 1
        length = int.from_bytes(data[pos + 2:pos + 4], "big")
        if marker == 0xE1 and data[pos + 4:pos + 10] == b"Exif\x00\x00":
            return _tiff_orientation(data[pos + 10:pos + 2 + length])
        pos += 2 + length
    return 1


def _tiff_orientation(tiff: bytes) -> int:
    """The orientation tag of IFD0 of an EXIF TIFF block (1 when absent or malformed)."""
    order = {b"II": "little", b"MM": "big"}.get(tiff[:2])
    if order is None or int.from_bytes(tiff[2:4], order) != 42:
        return 1
    ifd = int.from_bytes(tiff[4:8], order)
    count = int.from_bytes(tiff[ifd:ifd + 2], order) if ifd + 2 <= len(tiff) else 0
    for entry in range(ifd + 2, min(ifd + 2 + 12 * count, len(tiff) - 11), 12):
        if int.from_bytes(tiff[entry:entry + 2], order) == ORIENTATION_TAG:
            value = int.from_bytes(tiff[entry + 8:entry + 10], order)  # a SHORT, left in its field
            return value if 1 <= value <= 8 else 1
    return 1


def upright(array: np.ndarray, orientation: int) -> np.ndarray:
    """``array`` (H x W or H x W x C, as stored) turned the way a viewer shows a photo with
    EXIF ``orientation``: 2 mirrored, 3 turned 180°, 4 flipped, 5 transposed, 6 turned 90°
    clockwise, 7 transversed, 8 turned 90° counter-clockwise (5-8 swap width and height)."""
    turns = {
        1: lambda a: a,
        2: lambda a: a[:, ::-1],
        3: lambda a: a[::-1, ::-1],
        4: lambda a: a[::-1],
        5: lambda a: a.swapaxes(0, 1),
        6: lambda a: np.rot90(a, -1),
        7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
        8: lambda a: np.rot90(a, 1),
    }
    return np.ascontiguousarray(turns[orientation](array))


def stored_shape(shape: tuple[int, int], orientation: int) -> tuple[int, int]:
    """(H, W) of the stored pixels of a photo whose upright picture is ``shape``."""
    return (shape[1], shape[0]) if orientation >= 5 else tuple(shape)
