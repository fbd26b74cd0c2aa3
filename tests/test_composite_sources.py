"""Sources of ``blurgen composite``: image folders, image decoding, mask folders, area filter,
procedural photos."""

from __future__ import annotations

import struct
import zlib
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest

from blurgen.color import srgb_to_linear
from blurgen.composite import procedural
from blurgen.composite.masks import FolderMasks
from blurgen.composite.procedural import ProceduralMasks, procedural_source
from blurgen.composite.sources import (SkipSource, SourceRef, filter_by_area, list_image_files,
                                       load_image_linear, load_source, procedural_refs)
from blurgen.errors import BlurgenError

W, H = 160, 120  # procedural tests: small pictures keep the background bank cheap


def write(path: Path, image: np.ndarray) -> Path:
    """Write an RGB(A) or gray image (RGB order) with OpenCV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3 and image.shape[2] == 3:
        image = image[:, :, ::-1]
    elif image.ndim == 3 and image.shape[2] == 4:
        image = image[:, :, [2, 1, 0, 3]]
    assert cv2.imwrite(str(path), image)
    return path


def png_bytes(width: int, height: int, colour_type: int, samples: np.ndarray) -> bytes:
    """A minimal 8-bit PNG (OpenCV cannot write gray+alpha): rows of ``samples`` (uint8)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    raw = b"".join(b"\x00" + samples[y].tobytes() for y in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def ref_for(images: Path, rel: str) -> SourceRef:
    return SourceRef(rel, images / rel, 0)


# -- image folders -------------------------------------------------------------------------------

def test_list_image_files_sorted_recursive_and_skips_hidden(tmp_path):
    pixel = np.zeros((2, 2, 3), np.uint8)
    for rel in ("b.png", "a/z.JPG", "a/c.jpeg", ".hidden.png", ".cache/x.png", "notes.txt", "d.webp"):
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"x") if rel.endswith((".txt", ".webp")) else write(path, pixel)
    refs = list_image_files(tmp_path)
    assert [r.source_id for r in refs] == ["a/c.jpeg", "a/z.JPG", "b.png"]
    assert [r.index for r in refs] == [0, 1, 2]
    assert refs[1].path == tmp_path / "a" / "z.JPG"


def test_list_image_files_bad_folders_give_one_line(tmp_path):
    with pytest.raises(BlurgenError, match="no images") as empty:
        list_image_files(tmp_path)
    with pytest.raises(BlurgenError, match="does not exist") as missing:
        list_image_files(tmp_path / "nope")
    assert "\n" not in str(empty.value) and "\n" not in str(missing.value)


def test_procedural_refs():
    refs = procedural_refs(3)
    assert [r.source_id for r in refs] == ["procedural-00000", "procedural-00001", "procedural-00002"]
    assert all(r.path is None and r.procedural for r in refs) and refs[2].index == 2
    with pytest.raises(ValueError):
        procedural_refs(-1)


# -- decoding ------------------------------------------------------------------------------------

def test_load_rgb8_is_exact_srgb_decode_in_rgb_order(tmp_path):
    image = np.array([[[255, 0, 0], [0, 128, 0]], [[0, 0, 64], [10, 20, 30]]], np.uint8)
    got = load_image_linear(write(tmp_path / "a.png", image))
    assert got.dtype == np.float32 and got.shape == (2, 2, 3)
    np.testing.assert_array_equal(got, srgb_to_linear(image))
    assert got[0, 0, 0] == 1.0 and got[0, 0, 2] == 0.0  # red stays in channel 0


def test_load_gray16_gives_three_equal_channels(tmp_path):
    gray = np.array([[0, 1000], [32768, 65535]], np.uint16)
    got = load_image_linear(write(tmp_path / "g.png", gray))
    expected = ((gray / 65535.0 + 0.055) / 1.055) ** 2.4
    expected[gray / 65535.0 <= 0.04045] = gray[gray / 65535.0 <= 0.04045] / 65535.0 / 12.92
    for c in range(3):
        np.testing.assert_allclose(got[:, :, c], expected, rtol=1e-5, atol=1e-7)


def test_load_rgba_composites_over_grey_in_linear_light(tmp_path):
    rgba = np.zeros((1, 3, 4), np.uint8)
    rgba[0, :, :3] = (200, 30, 90)
    rgba[0, :, 3] = (0, 255, 51)  # transparent, opaque, 20 %
    got = load_image_linear(write(tmp_path / "a.png", rgba))
    grey = srgb_to_linear(np.array(0.5, np.float32))
    colour = srgb_to_linear(np.array([200, 30, 90], np.uint8))
    np.testing.assert_allclose(got[0, 0], [grey] * 3, rtol=1e-6)
    np.testing.assert_allclose(got[0, 1], colour, rtol=1e-6)
    np.testing.assert_allclose(got[0, 2], 0.2 * colour + 0.8 * grey, rtol=1e-5)


def test_load_gray_alpha_png(tmp_path):
    samples = np.array([[[255, 255], [255, 0]]], np.uint8).reshape(1, 4)  # gray, alpha per pixel
    path = tmp_path / "ga.png"
    path.write_bytes(png_bytes(2, 1, 4, samples))
    got = load_image_linear(path)
    grey = srgb_to_linear(np.array(0.5, np.float32))
    np.testing.assert_allclose(got[0, 0], [1.0] * 3, rtol=1e-6)
    np.testing.assert_allclose(got[0, 1], [grey] * 3, rtol=1e-6)


def test_load_jpeg_applies_exif_orientation(tmp_path):
    image = np.zeros((20, 40, 3), np.uint8)
    ok, buf = cv2.imencode(".jpg", image)
    tiff = (b"MM\x00\x2a\x00\x00\x00\x08" + struct.pack(">H", 1)
            + struct.pack(">HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack(">I", 0))  # orientation 6: rotate 90
    app1 = b"\xff\xe1" + struct.pack(">H", 2 + 6 + len(tiff)) + b"Exif\x00\x00" + tiff
    path = tmp_path / "r.jpg"
    path.write_bytes(buf.tobytes()[:2] + app1 + buf.tobytes()[2:])
    assert load_image_linear(path).shape == (40, 20, 3)


@pytest.mark.parametrize("content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 30])
def test_corrupt_image_is_a_skip_with_a_short_reason(tmp_path, content):
    path = tmp_path / "bad.png"
    path.write_bytes(content)
    with pytest.raises(SkipSource) as info:
        load_image_linear(path)
    assert info.value.reason == "unreadable image" and "\n" not in str(info.value)


# -- area filter ---------------------------------------------------------------------------------

def test_filter_by_area_bounds_and_counts():
    masks = np.zeros((4, 10, 10), bool)
    masks[0, :1, :5] = True    # 5 %
    masks[1, :2, :] = True     # 20 %
    masks[2, :9, :] = True     # 90 %
    dropped = Counter()        # masks[3]: empty
    kept, names = filter_by_area(masks, ["a", "b", "c", "d"], 0.05, 0.5, dropped)
    assert names == ["a", "b"] and kept.shape == (2, 10, 10)
    assert dropped == {"empty mask": 1, "mask above max area": 1}
    kept, names = filter_by_area(masks, ["a", "b", "c", "d"], 0.06, 1.0, dropped)
    assert names == ["b", "c"] and dropped["mask below min area"] == 1
    with pytest.raises(ValueError):
        filter_by_area(masks, list("abcd"), 0.5, 0.2)


# -- mask folders --------------------------------------------------------------------------------

@pytest.fixture
def folders(tmp_path):
    images, masks = tmp_path / "images", tmp_path / "masks"
    write(images / "sub" / "photo.v1.jpg", np.full((6, 8, 3), 120, np.uint8))
    masks.mkdir()
    return images, masks


def test_label_image_8_and_16_bit(folders):
    images, masks = folders
    ref = ref_for(images, "sub/photo.v1.jpg")
    label = np.zeros((6, 8), np.uint16)
    label[:2, :3] = 300
    label[4:, 6:] = 7
    write(masks / "sub" / "photo.v1.png", label)
    found, names = FolderMasks(masks).masks_for(ref, np.zeros((6, 8, 3), np.float32))
    assert names == ["label-7", "label-300"]
    np.testing.assert_array_equal(found[0], label == 7)
    np.testing.assert_array_equal(found[1], label == 300)
    write(masks / "sub" / "photo.v1.png", (label == 7).astype(np.uint8) * 3)
    found, names = FolderMasks(masks).masks_for(ref, np.zeros((6, 8, 3), np.float32))
    assert names == ["label-3"] and found.sum() == 4


def test_colour_label_image_one_instance_per_colour(folders):
    images, masks = folders
    label = np.zeros((6, 8, 3), np.uint8)
    label[0, 0] = (255, 0, 0)
    label[5, :] = (0, 128, 255)
    write(masks / "sub" / "photo.v1.png", label)
    found, names = FolderMasks(masks).masks_for(ref_for(images, "sub/photo.v1.jpg"), np.zeros((6, 8, 3)))
    assert names == ["label-#0080ff", "label-#ff0000"]
    assert found[0].sum() == 8 and found[1][0, 0] and found[1].sum() == 1


def test_instance_folder_thresholds_at_half_range(folders):
    images, masks = folders
    inst = masks / "sub" / "photo.v1"
    a = np.zeros((6, 8), np.uint8)
    a[0, :4] = (127, 128, 200, 255)
    write(inst / "a_hand.png", a)
    b = np.zeros((6, 8), np.uint16)
    b[1, 1] = 40000
    write(inst / "b_face.png", b)
    write(inst / "c_empty.png", np.zeros((6, 8), np.uint8))
    found, names = FolderMasks(masks).masks_for(ref_for(images, "sub/photo.v1.jpg"), np.zeros((6, 8, 3)))
    assert names == ["a_hand.png", "b_face.png", "c_empty.png"]
    assert found[0, 0].tolist()[:4] == [False, True, True, True] and found[0].sum() == 3
    assert found[1, 1, 1] and found[1].sum() == 1 and found[2].sum() == 0


def test_load_source_drops_and_counts_empty_instance(folders):
    images, masks = folders
    inst = masks / "sub" / "photo.v1"
    full = np.zeros((6, 8), np.uint8)
    full[:3] = 255
    write(inst / "half.png", full)
    write(inst / "empty.png", np.zeros((6, 8), np.uint8))
    ref = list_image_files(images)[0]
    data = load_source(ref, FolderMasks(masks), min_area=0.0, max_area=1.0)
    assert data.mask_names == ["half.png"] and data.dropped == {"empty mask": 1}
    assert data.image.shape == (6, 8, 3) and data.masks.shape == (1, 6, 8) and data.masks.sum() == 24
    data = load_source(ref, FolderMasks(masks), min_area=0.6, max_area=1.0)
    assert data.masks.shape == (0, 6, 8) and data.dropped == {"empty mask": 1, "mask below min area": 1}


def test_mask_folder_problems_are_skips(folders):
    images, masks = folders
    ref = ref_for(images, "sub/photo.v1.jpg")
    image = np.zeros((6, 8, 3), np.float32)
    source = FolderMasks(masks)
    with pytest.raises(SkipSource) as info:
        source.masks_for(ref, image)
    assert info.value.reason == "no mask file"
    write(masks / "sub" / "photo.v1.png", np.ones((8, 6), np.uint8))
    with pytest.raises(SkipSource) as info:
        source.masks_for(ref, image)
    assert info.value.reason == "mask size mismatch" and "mask_orientation" in str(info.value)
    write(masks / "sub" / "photo.v1" / "x.png", np.ones((6, 8), np.uint8))
    with pytest.raises(SkipSource) as info:
        source.masks_for(ref, image)
    assert info.value.reason == "ambiguous masks"
    (masks / "sub" / "photo.v1.png").unlink()
    (masks / "sub" / "photo.v1" / "x.png").write_bytes(b"garbage")
    with pytest.raises(SkipSource) as info:
        source.masks_for(ref, image)
    assert info.value.reason == "unreadable mask"
    for exc in (info.value,):
        assert "\n" not in str(exc)


def test_mask_folder_errors_of_setup(tmp_path):
    with pytest.raises(BlurgenError, match="masks folder"):
        FolderMasks(tmp_path / "missing")
    write(tmp_path / "a.png", np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(BlurgenError, match="is the images folder"):
        FolderMasks(tmp_path).masks_for(ref_for(tmp_path, "a.png"), np.zeros((4, 4, 3)))


def test_load_source_corrupt_image_is_a_skip(tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8 broken")
    ref = list_image_files(tmp_path)[0]
    with pytest.raises(SkipSource, match="unreadable image"):
        load_source(ref, FolderMasks(tmp_path))


# -- procedural photos ---------------------------------------------------------------------------

def test_procedural_is_deterministic_and_varies_by_index():
    a = procedural_source(3, 5, W, H)
    b = procedural_source(3, 5, W, H)
    c = procedural_source(3, 6, W, H)
    assert a[0].tobytes() == b[0].tobytes() and a[1].tobytes() == b[1].tobytes() and a[2] == b[2]
    assert a[0].tobytes() != c[0].tobytes()
    image, masks, names = a
    assert image.dtype == np.float32 and image.shape == (H, W, 3)
    assert 0.0 <= image.min() and image.max() <= 1.0
    assert masks.dtype == bool and masks.shape == (len(names), H, W) and len(names) >= 1


def test_procedural_masks_disjoint_nonempty_and_person_parts_appear():
    seen = set()
    for index in range(12):
        _, masks, names = procedural_source(1, index, W, H)
        assert len(set(names)) == len(names)
        assert masks.sum(axis=0).max() <= 1                       # a pixel shows one instance at most
        assert masks.reshape(len(masks), -1).any(axis=1).all()   # no empty masks
        seen.update(names)
    assert {"procedural-face", "procedural-hair", "procedural-torso",
            "procedural-hand-left", "procedural-hand-right"} <= seen
    assert any(n.startswith(("procedural-ellipse", "procedural-star", "procedural-polygon",
                             "procedural-box")) for n in seen)


def test_procedural_masks_are_exactly_the_pixels_each_instance_shows(monkeypatch):
    """Black background, every instance a flat colour of its own: colour k must be mask k."""
    painted: list[float] = []

    def flat(*args, **kwargs):
        value = (len(painted) + 1) * 8 / 255.0
        painted.append(value)
        return lambda x, y, w, h: np.full((h, w, 3), value, np.float32)

    monkeypatch.setattr(procedural, "_background", lambda rng, seed, w, h: np.zeros((h, w, 3), np.uint8))
    for factory in ("_textured", "_skin", "_hair"):
        monkeypatch.setattr(procedural, factory, flat)
    checked = 0
    for index in range(6):
        painted.clear()
        image, masks, names = procedural_source(2, index, W, H)
        union = masks.any(axis=0)
        assert np.array_equal(union, (image > 0).any(axis=2))
        for mask, name in zip(masks, names):
            if name == "procedural-face":  # eyes, brows and mouth lie inside the face
                continue
            colours = np.unique(image[mask], axis=0)
            assert len(colours) == 1, name
            np.testing.assert_array_equal((image == colours[0]).all(axis=2), mask)
            checked += 1
    assert checked >= 10


def test_procedural_sources_through_load_source():
    ref = procedural_refs(4)[3]
    masks = ProceduralMasks(9, (W, H))
    data = load_source(ref, masks, min_area=0.0, max_area=1.0)
    image, exact, names = procedural_source(9, 3, W, H)
    assert data.source_id == "procedural-00003" and data.mask_names == names
    np.testing.assert_array_equal(data.masks, exact)
    np.testing.assert_array_equal(data.image, image)
    other_seed = load_source(ref, ProceduralMasks(10, (W, H)))
    assert not np.array_equal(other_seed.image, image)  # the mask source carries the job's seed
    strict = load_source(ref, masks, min_area=0.02, max_area=0.3)
    areas = strict.masks.reshape(len(strict.masks), -1).mean(axis=1)
    assert ((areas >= 0.02) & (areas <= 0.3)).all()
    assert sum(strict.dropped.values()) == len(names) - len(strict.mask_names)


def test_each_mask_source_loads_only_its_kind_of_source(tmp_path):
    photo = write(tmp_path / "a.png", np.zeros((6, 8, 3), np.uint8))
    with pytest.raises(ValueError, match="procedural"):
        ProceduralMasks(0, (W, H)).load(SourceRef("a.png", photo, 0))
    with pytest.raises(ValueError, match="image file"):
        FolderMasks(tmp_path).load(procedural_refs(1)[0])


def test_mask_source_modules_import_in_one_direction():
    """sources.py is imported by the mask sources and imports none of them (no cycle, no re-export)."""
    import ast

    import blurgen.composite.sources as sources

    tree = ast.parse(Path(sources.__file__).read_text())
    imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not imported & {"blurgen.composite.procedural", "blurgen.composite.masks", "blurgen.composite.sam"}
    assert not hasattr(sources, "__getattr__")
