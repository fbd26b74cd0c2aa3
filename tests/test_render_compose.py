"""Windows of sub-interval layers, linear-light compositing, background crops and loading."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.errors import BlurgenError
from blurgen.render.compose import (composite, crop_background, load_background, window_layer,
                                    window_starts)


# --- windows ----------------------------------------------------------------------------------

def test_centred_windows_contain_the_middle_sub_interval():
    assert [window_starts(k, "centred")[0] for k in range(1, 11)] == [11, 10, 10, 9, 9, 8, 8, 7, 7, 6]
    for k in range(1, 24):
        (start,) = window_starts(k, "centred")
        assert start <= 11 < start + k  # sub-interval 11 spans instants 11..12, centre 11.5
        before, after = start, 23 - start - k
        assert after - before in (0, 1)  # exactly centred, or half a sub-interval early


def test_all_windows():
    assert window_starts(10, "all") == list(range(14))
    assert window_starts(23, "all") == [0] and window_starts(1, "all", num_sub=5) == [0, 1, 2, 3, 4]
    with pytest.raises(ValueError):
        window_starts(24, "all")
    with pytest.raises(ValueError):
        window_starts(3, "middle")


def test_window_layer_is_the_mean_of_its_layers():
    rng = np.random.default_rng(0)
    layers = rng.random((23, 6, 8, 4), dtype=np.float32)
    out = window_layer(layers, 4, 5)
    assert out.dtype == np.float32 and out.shape == (6, 8, 4)
    assert np.allclose(out, layers[4:9].mean(axis=0), atol=1e-6)
    single = window_layer(layers, 22, 1)
    assert np.array_equal(single, layers[22]) and not np.shares_memory(single, layers)
    with pytest.raises(ValueError):
        window_layer(layers, 20, 4)


def test_window_of_identical_layers_is_that_layer():
    layer = np.random.default_rng(1).random((6, 8, 4), dtype=np.float32)
    for count in (1, 2, 3, 7, 10):
        assert np.allclose(window_layer(np.repeat(layer[None], 23, axis=0), 3, count), layer, rtol=1e-6, atol=0)


# --- compositing ------------------------------------------------------------------------------

def test_alpha_zero_returns_the_background_exactly():
    bg_u8 = np.arange(256 * 3, dtype=np.uint8).reshape(16, 16, 3)
    bg_u8 = np.concatenate([bg_u8, bg_u8[::-1]], axis=1)  # every value in every channel
    empty = np.zeros(bg_u8.shape[:2] + (4,), np.float32)
    assert np.array_equal(linear_to_srgb_uint8(composite(empty, srgb_to_linear(bg_u8))), bg_u8)


def test_half_transparent_white_over_black_is_188_not_128():
    premult = np.zeros((1, 1, 4), np.float32)
    premult[..., :] = 0.5  # white (1, 1, 1) at alpha 0.5, premultiplied
    rgb = composite(premult, np.zeros((1, 1, 3), np.float32))
    assert np.allclose(rgb, 0.5)
    assert linear_to_srgb_uint8(rgb).ravel().tolist() == [188, 188, 188]
    # (The 8-bit sRGB blend that published generators do would give 0.5 * 255 + 0.5 * 0 = 128.)


def test_opaque_object_hides_the_background():
    premult = np.zeros((2, 2, 4), np.float32)
    premult[...] = [0.2, 0.4, 0.6, 1.0]
    rgb = composite(premult, np.ones((2, 2, 3), np.float32))
    assert np.allclose(rgb, [0.2, 0.4, 0.6])


def test_composite_checks_shapes_and_leaves_inputs_alone():
    premult = np.full((3, 4, 4), 0.25, np.float32)
    bg = np.full((3, 4, 3), 0.5, np.float32)
    composite(premult, bg)
    assert (premult == 0.25).all() and (bg == 0.5).all()
    with pytest.raises(ValueError):
        composite(premult, np.zeros((4, 3, 3), np.float32))


# --- background crops -------------------------------------------------------------------------

def test_crop_keeps_the_aspect_ratio_and_is_deterministic():
    image = np.random.default_rng(0).integers(0, 256, (400, 1000, 3), dtype=np.uint8)
    a = crop_background(image, 320, 240, np.random.default_rng(5))
    b = crop_background(image, 320, 240, np.random.default_rng(5))
    c = crop_background(image, 320, 240, np.random.default_rng(6))
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_crop_at_the_target_size_is_a_plain_crop():
    image = np.random.default_rng(0).integers(0, 256, (240, 500, 3), dtype=np.uint8)
    out = crop_background(image, 320, 240, np.random.default_rng(1))
    matches = [x for x in range(181) if np.array_equal(image[:, x:x + 320], out)]
    assert len(matches) == 1


def test_crop_is_the_largest_of_the_target_aspect():
    # A 640x480 source (same aspect as 320x240) is used whole: the crop position cannot matter.
    image = np.random.default_rng(0).integers(0, 256, (480, 640, 3), dtype=np.uint8)
    outs = [crop_background(image, 320, 240, np.random.default_rng(s)) for s in range(3)]
    assert all(np.array_equal(outs[0], o) for o in outs)


def test_shrinking_averages_in_linear_light():
    # A 1-pixel black/white checkerboard halved: each output pixel averages two white and two
    # black pixels, linear 0.5 -> sRGB 188 (an sRGB-space average would give 128).
    yy, xx = np.mgrid[:480, :640]
    board = np.repeat((((yy + xx) % 2) * 255).astype(np.uint8)[:, :, None], 3, axis=2)
    out = crop_background(board, 320, 240, np.random.default_rng(0))
    assert (out == 188).all()


def test_small_sources_are_upscaled_without_stretching():
    image = np.full((60, 100, 3), 90, np.uint8)  # wider than 4:3 -> crop 80x60, upscale x4
    out = crop_background(image, 320, 240, np.random.default_rng(0))
    assert out.shape == (240, 320, 3) and (out == 90).all()


def test_crop_draws_the_same_numbers_whatever_the_shape():
    rng_a, rng_b = np.random.default_rng(3), np.random.default_rng(3)
    crop_background(np.zeros((240, 320, 3), np.uint8), 320, 240, rng_a)   # no freedom at all
    crop_background(np.zeros((500, 999, 3), np.uint8), 320, 240, rng_b)
    assert rng_a.random() == rng_b.random()


# --- loading ----------------------------------------------------------------------------------

def test_load_background_returns_rgb(tmp_path):
    rgb = np.zeros((5, 7, 3), np.uint8)
    rgb[..., 0] = 200  # red
    cv2.imwrite(str(tmp_path / "red.png"), rgb[:, :, ::-1])
    out = load_background(tmp_path / "red.png")
    assert out.shape == (5, 7, 3) and out.dtype == np.uint8 and (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()


def test_load_background_converts_gray_rgba_and_16_bit(tmp_path):
    cv2.imwrite(str(tmp_path / "gray.png"), np.full((4, 6), 77, np.uint8))
    assert (load_background(tmp_path / "gray.png") == 77).all()
    bgra = np.zeros((4, 6, 4), np.uint8)
    bgra[...] = [10, 20, 30, 0]  # fully transparent: the colour is kept, alpha dropped
    cv2.imwrite(str(tmp_path / "rgba.png"), bgra)
    assert (load_background(tmp_path / "rgba.png") == [30, 20, 10]).all()
    deep = np.zeros((4, 6, 3), np.uint16)
    deep[...] = [0, 257 * 100 + 128, 65535]  # BGR
    cv2.imwrite(str(tmp_path / "deep.png"), deep)
    assert (load_background(tmp_path / "deep.png") == [255, 100, 0]).all()


def test_unreadable_or_missing_backgrounds_name_the_file(tmp_path):
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(b"not a jpeg at all")
    with pytest.raises(BlurgenError, match="broken.jpg"):
        load_background(bad)
    with pytest.raises(BlurgenError, match="missing.png"):
        load_background(tmp_path / "missing.png")


def test_loaded_background_survives_the_linear_round_trip(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (24, 32, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "bg.png"), image[:, :, ::-1])
    loaded = load_background(tmp_path / "bg.png")
    assert np.array_equal(linear_to_srgb_uint8(srgb_to_linear(loaded)), image)
