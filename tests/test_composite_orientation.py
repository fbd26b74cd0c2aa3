"""EXIF-rotated JPEG photos with mask files (issue 14): each of the eight orientations, with
mask files made on the stored pixels or on the upright photo, and the skip when unset.

The oracle for what "upright" means is OpenCV's decoder, which turns a JPEG by its EXIF tag:
the object found in the decoded photo is where the mask must land.
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.composite.masks import FolderMasks
from blurgen.composite.orientation import exif_orientation, photo_orientation, upright
from blurgen.composite.sources import SkipSource, SourceRef, read_image_file
from blurgen.shards import ShardDataset

STORED = (48, 64)  # H, W of the stored pixels
OBJECT = (slice(6, 20), slice(8, 30))  # an off-centre object: every wrong turn misplaces it


def segment(marker: int, body: bytes) -> bytes:
    """A JPEG marker segment: the marker, its length and ``body``."""
    return bytes([0xFF, marker]) + struct.pack(">H", len(body) + 2) + body


def exif_segment(orientation: int, order: str = "II") -> bytes:
    """An APP1 EXIF segment whose IFD0 holds just the Orientation tag (SHORT)."""
    fmt = "<" if order == "II" else ">"
    tiff = order.encode() + struct.pack(fmt + "HI", 42, 8) + struct.pack(fmt + "H", 1)
    tiff += struct.pack(fmt + "HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack(fmt + "I", 0)
    return segment(0xE1, b"Exif\x00\x00" + tiff)


def jpeg_with_orientation(pixels: np.ndarray, orientation: int, before: bytes = b"", order: str = "II") -> bytes:
    """``pixels`` (BGR, as stored) as a JPEG carrying the EXIF orientation, written by hand."""
    ok, encoded = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 98])
    assert ok
    data = encoded.tobytes()
    return data[:2] + before + exif_segment(orientation, order) + data[2:]


def stored_photo() -> tuple[np.ndarray, np.ndarray]:
    """(BGR pixels as stored, the object's mask as stored)."""
    rng = np.random.default_rng(0)
    pixels = rng.integers(10, 60, STORED + (3,), dtype=np.uint8)
    mask = np.zeros(STORED, bool)
    mask[OBJECT] = True
    pixels[mask] = (200, 230, 250)
    return pixels, mask


def write_case(root: Path, orientation: int, masks_made: str, before: bytes = b"") -> tuple[SourceRef, np.ndarray]:
    """A rotated photo (``before``: segments ahead of its EXIF block) and its label-image mask
    file; returns its handle and the upright object as OpenCV's decoder shows it."""
    images, masks = root / "images", root / "masks"
    images.mkdir(parents=True)
    masks.mkdir()
    pixels, mask = stored_photo()
    path = images / "photo.jpg"
    path.write_bytes(jpeg_with_orientation(pixels, orientation, before))
    upright_photo = cv2.imread(str(path), cv2.IMREAD_COLOR)
    upright_object = upright_photo[:, :, 2] > 128  # red channel: bright only on the object
    label = (mask if masks_made == "stored" else upright_object).astype(np.uint8) * 7
    cv2.imwrite(str(masks / "photo.png"), label)
    return SourceRef("photo.jpg", path, 0), upright_object


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return np.count_nonzero(a & b) / max(1, np.count_nonzero(a | b))


@pytest.mark.parametrize("masks_made", ["stored", "upright"])
@pytest.mark.parametrize("orientation", range(1, 9))
def test_the_mask_lands_on_the_object_in_the_upright_photo(orientation, masks_made, tmp_path):
    ref, upright_object = write_case(tmp_path, orientation, masks_made)
    swapped = orientation >= 5
    assert upright_object.shape == (STORED[::-1] if swapped else STORED)
    image, masks, names = FolderMasks(tmp_path / "masks", masks_made).load(ref)
    assert image.shape[:2] == upright_object.shape and names == ["label-7"]
    assert iou(masks[0], upright_object) > 0.95
    # The other setting misplaces it (or, turned by 90°, does not even fit) for every real turn.
    other = "upright" if masks_made == "stored" else "stored"
    if orientation == 1:
        assert iou(FolderMasks(tmp_path / "masks", other).load(ref)[1][0], upright_object) > 0.95
    elif swapped:
        with pytest.raises(SkipSource, match="mask size mismatch"):
            FolderMasks(tmp_path / "masks", other).load(ref)
    else:
        assert iou(FolderMasks(tmp_path / "masks", other).load(ref)[1][0], upright_object) < 0.2


@pytest.mark.parametrize("orientation", range(1, 9))
def test_unset_mask_orientation_skips_rotated_photos_only(orientation, tmp_path):
    ref, upright_object = write_case(tmp_path, orientation, "stored")
    masks = FolderMasks(tmp_path / "masks")
    if orientation == 1:
        assert iou(masks.load(ref)[1][0], upright_object) > 0.95
    else:
        with pytest.raises(SkipSource) as skip:
            masks.load(ref)
        assert skip.value.reason == "rotated photo, mask orientation not set"
        assert f"EXIF orientation {orientation}" in skip.value.detail


def after_app0(data: bytes, inserted: bytes) -> bytes:
    """The JPEG ``data`` (SOI, then APP0 as OpenCV writes it) with ``inserted`` after its APP0."""
    assert data[2:4] == b"\xff\xe0"
    end = 4 + struct.unpack(">H", data[4:6])[0]
    return data[:end] + inserted + data[end:]


def after_dqt(data: bytes, inserted: bytes) -> bytes:
    """The JPEG ``data`` with ``inserted`` after its first quantisation table segment (DQT)."""
    start = data.index(b"\xff\xdb")
    end = start + 2 + struct.unpack(">H", data[start + 2:start + 4])[0]
    return data[:end] + inserted + data[end:]


ICC = segment(0xE2, b"ICC_PROFILE\x00\x01\x03" + bytes(60000))  # three of these: 180 kB
XMP = segment(0xE1, b"http://ns.adobe.com/xap/1.0/\x00<x/>")
# (name, the JPEG built from a plain one, the turn OpenCV applies: checked first, so that a case
# in which both OpenCV and the reader ignored the tag could not pass unnoticed)
LAYOUTS = [
    ("EXIF after 180 kB of ICC segments", lambda d: d[:2] + 3 * ICC + exif_segment(6) + d[2:], 6),
    ("EXIF after 180 kB of ICC segments, big endian", lambda d: d[:2] + 3 * ICC + exif_segment(3, "MM") + d[2:], 3),
    ("fill bytes before EXIF", lambda d: after_app0(d, b"\xff" * 5 + exif_segment(8)), 8),
    ("stray bytes before EXIF (libjpeg skips them)", lambda d: after_app0(d, b"\x00\x12\x34" + exif_segment(6)), 6),
    ("stuffed FF 00, RST0 and TEM before EXIF", lambda d: after_app0(d, b"\xff\x00\xff\xd0\xff\x01" + exif_segment(5)), 5),
    ("EXIF after a comment and the quantisation tables", lambda d: after_dqt(d, segment(0xFE, b"hi") + exif_segment(7)), 7),
    ("XMP APP1 first: OpenCV reads only the first APP1", lambda d: d[:2] + XMP + exif_segment(6) + d[2:], 1),
    ("two EXIF blocks: the first counts", lambda d: d[:2] + exif_segment(2) + exif_segment(4) + d[2:], 2),
    ("EXIF block with value 9", lambda d: d[:2] + exif_segment(9) + d[2:], 1),
    ("no EXIF", lambda d: d, 1),
]


def opencv_turn(jpeg: bytes, stored: np.ndarray) -> int:
    """The one of the eight orientations that OpenCV applied when decoding ``jpeg``, whose
    pixels as stored (its decode without the tag) are ``stored`` (the eight turns of
    ``upright`` are checked against OpenCV's by the first test)."""
    shown = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
    turns = [o for o in range(1, 9) if np.array_equal(upright(stored, o), shown)]
    assert len(turns) == 1
    return turns[0]


@pytest.mark.parametrize("name, build, turn", LAYOUTS, ids=[layout[0] for layout in LAYOUTS])
def test_the_reader_finds_the_orientation_opencv_applies(name, build, turn):
    """Wherever the EXIF block sits before the image data and whatever libjpeg tolerates on
    the way (large APP segments, fill and stray bytes, markers without a length), the reader
    says the turn OpenCV's decoder gives the photo: its upright decode is the stored pixels
    turned by the reader's orientation."""
    pixels, _ = stored_photo()
    ok, plain = cv2.imencode(".jpg", pixels, [cv2.IMWRITE_JPEG_QUALITY, 98])
    jpeg = build(plain.tobytes())
    stored = cv2.imdecode(plain, cv2.IMREAD_COLOR)  # no tag: the pixels as stored
    assert opencv_turn(jpeg, stored) == turn
    assert exif_orientation(jpeg) == turn


def test_a_png_is_read_as_stored_even_with_an_exif_chunk(tmp_path):
    """PNGs are decoded as stored (IMREAD_UNCHANGED ignores their eXIf chunk) and the reader
    says 1 for them."""
    pixels, _ = stored_photo()
    ok, png = cv2.imencode(".png", pixels)
    data = png.tobytes()
    body = b"eXIf" + exif_segment(6)[10:]  # the TIFF block of an EXIF segment
    chunk = struct.pack(">I", len(body) - 4) + body + struct.pack(">I", zlib.crc32(body))
    ihdr_end = 8 + 8 + 13 + 4
    path = tmp_path / "photo.png"
    path.write_bytes(data[:ihdr_end] + chunk + data[ihdr_end:])
    # The chunk is one OpenCV reads: decoded in colour, the photo is turned.
    assert cv2.imread(str(path), cv2.IMREAD_COLOR).shape[:2] == STORED[::-1]
    assert np.array_equal(read_image_file(path), pixels)
    assert exif_orientation(path.read_bytes()) == 1 and photo_orientation(path) == 1


def test_a_late_exif_block_is_not_missed_by_the_mask_source(tmp_path):
    """The photo that OpenCV turns by an EXIF block behind 180 kB of ICC data: unset, it is the
    counted skip; with mask files made on the stored pixels, the mask lands on the object (both
    through load, which reads the tag from the bytes it decoded, and masks_for, which reads the
    file)."""
    ref, upright_object = write_case(tmp_path, 6, "stored", before=3 * ICC)
    with pytest.raises(SkipSource, match="rotated photo, mask orientation not set"):
        FolderMasks(tmp_path / "masks").load(ref)
    with pytest.raises(SkipSource, match="rotated photo, mask orientation not set"):
        FolderMasks(tmp_path / "masks").masks_for(ref, np.zeros(upright_object.shape + (3,), np.float32))
    image, masks, _ = FolderMasks(tmp_path / "masks", "stored").load(ref)
    assert image.shape[:2] == upright_object.shape and iou(masks[0], upright_object) > 0.95


@pytest.mark.parametrize("setting, used", [(None, 1), ("stored", 2)])
def test_the_job_counts_rotated_photos_it_skips(setting, used, tmp_path):
    """A job over an upright and a rotated photo: unset, the rotated one is a counted skip with
    its reason; set, both make samples."""
    ref, _ = write_case(tmp_path, 3, "stored")
    pixels, mask = stored_photo()
    cv2.imwrite(str(tmp_path / "images" / "plain.jpg"), pixels)
    cv2.imwrite(str(tmp_path / "masks" / "plain.png"), mask.astype(np.uint8) * 7)
    args = ["composite", "--out", str(tmp_path / "out"), "--images", str(tmp_path / "images"),
            "--masks", str(tmp_path / "masks"), "--set", "samples.width=32", "--set", "samples.height=24",
            "--set", "samples.per_source=1", "--set", "samples.min_instance_px=8",
            "--set", "samples.val_fraction=0", "--set", "output.preview=false"]
    if setting:
        args += ["--set", f"sources.mask_orientation={setting}"]
    result = CliRunner().invoke(main, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert ("rotated photo, mask orientation not set 1" in result.output) == (setting is None)
    assert sorted({s["source_id"] for s in ShardDataset(tmp_path / "out")}) == sorted(
        ["plain.jpg", "photo.jpg"][:used])
