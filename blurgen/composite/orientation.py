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
from typing import Iterator

import numpy as np

MASK_ORIENTATIONS = ("stored", "upright")
ORIENTATION_TAG = 0x0112
_SOI, _SOS, _EOI, _APP1 = 0xD8, 0xDA, 0xD9, 0xE1
# Markers without a length field: TEM and the restart markers RST0-7.
_STANDALONE = frozenset([0x01, *range(0xD0, 0xD8)])


def photo_orientation(path: Path) -> int:
    """The EXIF orientation (1-8) OpenCV applies to the JPEG at ``path`` (see exif_orientation).

    The whole file is read: the EXIF block may come after large ICC or Photoshop segments."""
    return exif_orientation(Path(path).read_bytes())


def exif_orientation(data: bytes) -> int:
    """The EXIF orientation (1-8) that OpenCV applies when it decodes the file ``data``.

    OpenCV asks libjpeg for the segments before the image data and reads the Orientation tag of
    the first APP1 among them, whatever it holds (an XMP APP1 first hides a later EXIF one), as
    a TIFF block after a 6-byte header (``Exif`` and two zero bytes) it does not check. 1 (as
    stored) for other files (PNGs are decoded as stored), for JPEGs without the tag and for a
    value not 1-8.
    """
    if data[:2] != b"\xff\xd8":
        return 1
    for marker, start, end in _segments_before_scan(data):
        if marker == _APP1:
            return _tiff_orientation(data[start + 6:end]) if end - start > 6 else 1
    return 1


def _segments_before_scan(data: bytes) -> Iterator[tuple[int, int, int]]:
    """(marker, start, end of its body) of each segment of the JPEG ``data`` between SOI and
    the start of scan, found as libjpeg finds them (its next_marker): bytes that are not 0xFF
    are skipped (it warns and goes on), so are 0xFF fill bytes, stuffed 0xFF 0x00 pairs and the
    markers without a length (TEM, RST0-7). Stops at what ends libjpeg's header reading: the
    start of scan, an end of image or a second SOI (both fail the decode) and a cut-off file."""
    pos = 2
    while True:
        pos = data.find(b"\xff", pos)
        while 0 <= pos < len(data) and data[pos] == 0xFF:
            pos += 1
        if pos < 0 or pos >= len(data):
            return
        marker, pos = data[pos], pos + 1
        if marker == 0x00 or marker in _STANDALONE:
            continue
        if marker in (_SOS, _EOI, _SOI) or pos + 2 > len(data):
            return
        # libjpeg skips a length below 2 as an empty segment (and saves it so, an APP1 too).
        end = pos + max(2, int.from_bytes(data[pos:pos + 2], "big"))
        if end > len(data):
            return
        yield marker, pos + 2, end
        pos = end


def _tiff_orientation(tiff: bytes) -> int:
    """The Orientation tag of IFD0 of an EXIF TIFF block as OpenCV's ExifReader reads it: little
    endian after ``II`` and big endian after anything else, the mark 42 required, the first
    Orientation entry's value taken as a SHORT whatever its type; 1 when absent, cut off or not
    1-8. (OpenCV also gives up at an earlier entry it cannot read, a text or fraction pointing
    outside the block; such damaged blocks are not followed here.)"""
    order = "little" if tiff[:2] == b"II" else "big"

    def number(at: int, size: int) -> int | None:
        return int.from_bytes(tiff[at:at + size], order) if at + size <= len(tiff) else None

    if number(2, 2) != 42 or (ifd := number(4, 4)) is None or (count := number(ifd, 2)) is None:
        return 1
    for entry in range(ifd + 2, ifd + 2 + 12 * count, 12):
        tag = number(entry, 2)
        if tag is None:
            return 1
        if tag == ORIENTATION_TAG:
            value = number(entry + 8, 2)  # a SHORT, left in its field
            return value if value is not None and 1 <= value <= 8 else 1
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
