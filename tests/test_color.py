"""sRGB transfer functions: exact against IEC 61966-2-1, exact 8-bit round trips."""

from __future__ import annotations

import numpy as np
import pytest

from blurgen import color
from blurgen.color import linear_to_srgb, linear_to_srgb_uint8, srgb_to_linear

U8 = np.arange(256, dtype=np.uint8)


def decode_reference(s: np.ndarray) -> np.ndarray:
    s = np.asarray(s, dtype=np.float64)
    return np.array([v / 12.92 if v <= 0.04045 else ((v + 0.055) / 1.055) ** 2.4 for v in s.ravel()]).reshape(s.shape)


def encode_reference(l: np.ndarray) -> np.ndarray:
    l = np.asarray(l, dtype=np.float64)
    return np.where(l <= 0.0031308, 12.92 * l, 1.055 * np.abs(l) ** (1 / 2.4) - 0.055)


def u8_reference(l: np.ndarray) -> np.ndarray:
    return np.floor(255.0 * encode_reference(np.clip(np.asarray(l, dtype=np.float64), 0, 1)) + 0.5)


def test_uint8_decoding_is_the_formula_in_float32():
    lin = srgb_to_linear(U8)
    assert lin.dtype == np.float32
    assert np.array_equal(lin, decode_reference(U8 / 255.0).astype(np.float32))
    assert lin[0] == 0.0 and lin[255] == 1.0


def test_all_256_values_survive_the_round_trip_exactly():
    assert np.array_equal(linear_to_srgb_uint8(srgb_to_linear(U8)), U8)
    assert np.array_equal(linear_to_srgb_uint8(srgb_to_linear(U8).astype(np.float64)), U8)
    assert np.array_equal(linear_to_srgb_uint8(srgb_to_linear(U8 / 255.0)), U8)


def test_known_values():
    assert linear_to_srgb_uint8(np.float32(0.5)) == 188  # 0.735 * 255 = 187.5 -> 188
    assert linear_to_srgb_uint8(np.array([0.0, 1.0, 0.2158605])).tolist() == [0, 255, 128]
    assert srgb_to_linear(np.uint8(128)) == pytest.approx(0.2158605, abs=1e-7)
    assert linear_to_srgb(np.float64(0.5)) == pytest.approx(0.7353569830524495, abs=1e-12)


def test_the_knee_is_where_the_standard_puts_it():
    knee = np.array([0.04045])
    assert srgb_to_linear(knee)[0] == pytest.approx(0.04045 / 12.92, rel=1e-12)
    assert srgb_to_linear(np.nextafter(knee, 1))[0] == pytest.approx(0.04045 / 12.92, rel=1e-6)  # continuous
    assert linear_to_srgb(np.array([0.0031308]))[0] == pytest.approx(0.0031308 * 12.92, rel=1e-12)
    assert linear_to_srgb(np.array([0.0031309]))[0] == pytest.approx(0.0404513, abs=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_float_round_trip_and_dtype(dtype):
    x = np.linspace(0, 1, 1001).astype(dtype)
    assert srgb_to_linear(x).dtype == dtype and linear_to_srgb(x).dtype == dtype
    assert np.allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)
    assert np.allclose(srgb_to_linear(x), decode_reference(x), rtol=1e-6, atol=1e-7)


def test_uint16_decoding():
    x = np.array([0, 32768, 65535], dtype=np.uint16)
    assert np.allclose(srgb_to_linear(x), decode_reference(x / 65535.0), rtol=1e-6)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_uint8_encoding_is_exact_on_a_million_random_values(dtype):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.random(1_000_000), rng.random(100_000) * 0.01]).astype(dtype)
    got = linear_to_srgb_uint8(x).astype(np.float64)
    exact = 255.0 * encode_reference(x.astype(np.float64))
    assert np.abs(got - exact).max() <= 0.5 + 1e-9   # the required bound ...
    assert np.array_equal(got, u8_reference(x))       # ... and in fact exact rounding


def test_uint8_encoding_is_exact_next_to_every_rounding_threshold():
    thresholds = decode_reference((np.arange(1, 256) - 0.5) / 255.0)
    for dtype in (np.float32, np.float64):
        # Clearly on either side (beyond float64 evaluation noise of the formula): exact.
        probes = np.concatenate([thresholds * (1 - 1e-6), thresholds * (1 + 1e-6)]).astype(dtype)
        assert np.array_equal(linear_to_srgb_uint8(probes), u8_reference(probes))
        # On the threshold itself (a tie up to rounding): within the 0.5 LSB bound.
        t = thresholds.astype(dtype)
        err = np.abs(linear_to_srgb_uint8(t) - 255.0 * encode_reference(t.astype(np.float64)))
        assert err.max() <= 0.5 + 1e-6


def test_no_table_bin_holds_two_thresholds():
    assert np.diff(color._BIN_START.astype(int)).max() <= 1


def test_uint8_encoding_clips_and_maps_nan_to_zero():
    x = np.array([-1.0, -np.inf, np.nan, 1.5, np.inf], dtype=np.float32)
    assert linear_to_srgb_uint8(x).tolist() == [0, 0, 0, 255, 255]


def test_uint8_encoding_keeps_the_shape():
    x = np.full((7, 5, 3), 0.5, dtype=np.float32)
    out = linear_to_srgb_uint8(x)
    assert out.shape == (7, 5, 3) and out.dtype == np.uint8 and (out == 188).all()
    assert linear_to_srgb_uint8(np.zeros((0, 3), np.float32)).shape == (0, 3)


def test_uint8_decoding_of_any_shape_and_layout():
    x = np.random.default_rng(1).integers(0, 256, (3, 4, 5, 6), dtype=np.uint8)
    table = srgb_to_linear(U8)
    for view in (x, x[:, ::2, :, 1:], x[..., 0].T, x[0, 0, 0, 0], x[:0]):
        out = srgb_to_linear(view)
        assert out.shape == np.shape(view) and out.dtype == np.float32
        assert np.array_equal(out, table[view])
