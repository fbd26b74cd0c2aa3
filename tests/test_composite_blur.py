"""The six 2D motion-blur operators of ``blurgen composite``, against analytic cases."""

from __future__ import annotations

import json
import math

import cv2
import numpy as np
import pytest

from blurgen.composite import motion
from blurgen.composite.blurs import BLUR_TYPES, rolling, zoom_rotation
from blurgen.composite.blurs.base import copy_where
from blurgen.composite.blurs.dispatch import apply_blur, psf_for, sample_params
from blurgen.composite.config import KIND, BlurSection, CompositeConfig
from blurgen.config import resolve_config
from blurgen.errors import BlurgenError, ConfigError
from blurgen.rng import item_rng


def disc(shape: tuple[int, int], centre: tuple[float, float], radius: float,
         supersample: int = 8) -> np.ndarray:
    """Anti-aliased disc: alpha = covered area of each pixel (1 inside, a clean edge at ``radius``)."""
    h, w = shape
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    ys = (np.arange(h)[:, None] + offsets[None, :]).ravel()
    xs = (np.arange(w)[:, None] + offsets[None, :]).ravel()
    inside = ((xs[None, :] - centre[0]) ** 2 + (ys[:, None] - centre[1]) ** 2) <= radius**2
    return inside.reshape(h, supersample, w, supersample).mean(axis=(1, 3)).astype(np.float32)


def texture(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return cv2.GaussianBlur(rng.random(shape + (3,), dtype=np.float32), (0, 0), 1.0)


def box_overlap(s: np.ndarray, half_chord: float, length: float) -> np.ndarray:
    """|[s - L/2, s + L/2] intersected with [-R, R]| / L: a chord of length 2R blurred by a box L."""
    lo = np.maximum(s - length / 2, -half_chord)
    hi = np.minimum(s + length / 2, half_chord)
    return np.clip(hi - lo, 0.0, None) / length


def splat_image(shape: tuple[int, int], points: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Independent bilinear splat of weighted points (x, y) into an image."""
    out = np.zeros(shape)
    for (x, y), w in zip(points, weights):
        x0, y0 = int(math.floor(x)), int(math.floor(y))
        fx, fy = x - x0, y - y0
        out[y0, x0] += w * (1 - fx) * (1 - fy)
        out[y0, x0 + 1] += w * fx * (1 - fy)
        out[y0 + 1, x0] += w * (1 - fx) * fy
        out[y0 + 1, x0 + 1] += w * fx * fy
    return out


# --- zero motion, determinism, serialisation ----------------------------------------------------

@pytest.mark.parametrize("kind", BLUR_TYPES)
def test_zero_motion_returns_the_input_bit_exact(kind):
    alpha = disc((40, 50), (24.3, 19.6), 11.0)
    fg = texture((40, 50)) * alpha[..., None]
    fg[0, 0] = 0.25  # even values a blur would drop (colour where alpha is 0) come back unchanged
    params = sample_params(kind, item_rng(1, 2), 0.0, alpha)
    assert params["extent_px"] == 0.0
    out = apply_blur(params, fg, alpha)
    assert np.array_equal(out.foreground, fg) and np.array_equal(out.alpha, alpha)
    assert out.foreground.dtype == np.float32 and not np.shares_memory(out.foreground, fg)
    assert not out.extent.any()


def _plain(value) -> bool:
    if isinstance(value, dict):
        return all(type(k) is str and _plain(v) for k, v in value.items())
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    return type(value) in (str, float, int)


@pytest.mark.parametrize("kind", BLUR_TYPES)
def test_params_are_deterministic_json_and_fully_determine_the_blur(kind):
    alpha = disc((48, 56), (27.0, 22.5), 13.0)
    fg = texture((48, 56), 3) * alpha[..., None]
    params = sample_params(kind, item_rng(7, 11, 2), 9.5, alpha)
    assert params == sample_params(kind, item_rng(7, 11, 2), 9.5, alpha)
    assert params != sample_params(kind, item_rng(7, 12, 2), 9.5, alpha)
    assert _plain(params) and params["type"] == kind
    assert params["extent_px"] == pytest.approx(9.5, rel=1e-9)
    reloaded = json.loads(json.dumps(params))
    assert reloaded == params
    first = apply_blur(params, fg, alpha)
    again = apply_blur(reloaded, fg.copy(), alpha.copy())
    for name in ("foreground", "alpha", "extent"):
        a, b = getattr(first, name), getattr(again, name)
        assert a.dtype == np.float32 and a.tobytes() == b.tobytes()
    assert not np.array_equal(first.alpha, alpha)  # it did blur


def test_bad_inputs_are_refused_with_a_user_error():
    alpha = disc((20, 20), (10, 10), 5)
    with pytest.raises(BlurgenError, match="unknown blur type"):
        sample_params("gaussian", item_rng(0, 0), 3.0, alpha)
    with pytest.raises(BlurgenError, match="extent"):
        sample_params("straight", item_rng(0, 0), -1.0, alpha)
    with pytest.raises(BlurgenError, match="unknown blur type"):
        apply_blur({"type": "box", "extent_px": 2.0}, np.zeros((20, 20, 3), np.float32), alpha)
    with pytest.raises(BlurgenError, match="same H and W"):
        apply_blur({"type": "straight", "extent_px": 2.0, "angle_deg": 0.0},
                   np.zeros((20, 21, 3), np.float32), alpha)


@pytest.mark.parametrize("field, value", [("band_px", [5.0, 2.0]), ("shake_steps", [1, 4]),
                                          ("zoom_share", [0.2, 1.5]), ("curvature", [-0.1, 0.3])])
def test_blur_ranges_are_checked_by_the_config(field, value):
    with pytest.raises(ConfigError, match=f"blur.{field}"):
        resolve_config(CompositeConfig, KIND, preset="demo", overrides={"blur": {field: value}})


# --- PSFs ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["straight", "curved", "random_walk"])
@pytest.mark.parametrize("seed", range(4))
def test_psf_sums_to_one_and_is_odd_and_centred(kind, seed):
    alpha = disc((30, 30), (15, 15), 6)
    extent = [0.7, 5.0, 17.3, 40.0][seed]
    params = sample_params(kind, item_rng(seed, 0), extent, alpha)
    psf = psf_for(params)
    assert psf.dtype == np.float32 and psf.shape[0] == psf.shape[1] and psf.shape[0] % 2 == 1
    assert abs(float(psf.sum(dtype=np.float64)) - 1.0) < 1e-6 and psf.min() >= 0
    if kind == "straight":  # a symmetric path: the PSF's centre of mass is the kernel centre
        r = psf.shape[0] // 2
        ys, xs = np.mgrid[-r:r + 1, -r:r + 1]
        assert abs((psf * xs).sum()) < 1e-4 and abs((psf * ys).sum()) < 1e-4


def test_paths_are_centred_on_mid_exposure_and_have_the_requested_length():
    rng = item_rng(5, 5)
    walk = motion.random_walk_path(rng, 23.0, 15, 0.8)
    assert motion.path_length(walk) == pytest.approx(23.0, rel=1e-12)
    assert np.allclose(motion.point_at_time(walk, 0.5), 0.0, atol=1e-12)
    points = motion.curved_control_points(30.0, 40.0, 0.4)
    assert np.allclose(motion.bezier_points(points, np.array([0.5]))[0], 0.0, atol=1e-12)
    straight = motion.straight_path(9.0, 123.0)
    assert np.allclose(straight.mean(axis=0), 0.0) and motion.path_length(straight) == pytest.approx(9.0)


@pytest.mark.parametrize("seed", range(6))
def test_sampled_curved_path_has_arc_length_extent(seed):
    extent = [3.0, 8.0, 15.5, 24.0, 40.0, 64.0][seed]
    params = sample_params("curved", item_rng(seed, 1), extent, disc((20, 20), (10, 10), 4))
    arc = motion.path_length(motion.bezier_points(params["control_points"], np.linspace(0, 1, 20001)))
    assert arc == pytest.approx(extent, rel=0.01)
    assert 0.15 <= abs(params["curvature"]) <= 0.6


def test_tiled_convolution_equals_direct_convolution():
    """Big sparse kernels go through tiles (and very big ones a DFT); all must equal the plain sum."""
    rng = np.random.default_rng(0)
    image = rng.random((41, 47, 3), dtype=np.float32)
    for psf in (motion.path_psf(motion.straight_path(30.0, 35.0)),
                motion.path_psf(motion.random_walk_path(rng, 45.0, 20, 0.7)),
                motion.path_psf(motion.straight_path(3.0, 10.0))):
        out = motion.convolve_psf(image, psf)
        r = psf.shape[0] // 2
        padded = np.pad(image.astype(np.float64), ((r, r), (r, r), (0, 0)))
        expected = np.zeros(image.shape)
        for dy, dx in zip(*np.nonzero(psf)):  # out(x) = sum_d K[d] image(x - d)
            expected += psf[dy, dx] * padded[2 * r - dy:2 * r - dy + 41, 2 * r - dx:2 * r - dx + 47]
        assert np.abs(out - expected).max() < 1e-5


# --- straight -------------------------------------------------------------------------------------

@pytest.mark.parametrize("angle", [0.0, 90.0, 30.0])
def test_straight_blur_of_a_disc_matches_the_box_convolution_of_its_chord(angle):
    radius, length, size = 20.0, 16.0, 80
    c = (39.0, 41.0)
    alpha = disc((size, size), c, radius)
    colour = np.array([0.2, 0.5, 0.9], np.float32)
    params = {"type": "straight", "extent_px": length, "angle_deg": angle}
    out = apply_blur(params, alpha[..., None] * colour, alpha)

    assert np.allclose(out.foreground, out.alpha[..., None] * colour, atol=1e-6)  # same operator
    covered = out.alpha > 0
    assert np.abs(out.extent[covered] - length).max() < 1e-4 and not out.extent[~covered].any()
    assert out.alpha[41, 39] == pytest.approx(1.0, abs=1e-3)
    assert out.alpha.sum() == pytest.approx(alpha.sum(), rel=1e-4)  # nothing lost or made

    u = motion.direction(angle)
    s = np.arange(-32.0, 32.5, 0.5)
    xs = (c[0] + s * u[0]).astype(np.float32)
    ys = (c[1] + s * u[1]).astype(np.float32)
    profile = cv2.remap(out.alpha, xs[None, :], ys[None, :], cv2.INTER_LINEAR)[0]
    expected = box_overlap(s, radius, length)
    assert np.abs(profile - expected).max() < 0.02
    # Across the motion the disc stays sharp: the blur only spreads along u.
    side = cv2.remap(out.alpha, (c[0] - 25 * u[1]) + np.zeros((1, 1), np.float32),
                     (c[1] + 25 * u[0]) + np.zeros((1, 1), np.float32), cv2.INTER_LINEAR)
    assert float(side[0, 0]) < 1e-3


def test_straight_blur_leaves_the_rest_of_the_image_empty():
    alpha = np.zeros((60, 60), np.float32)
    alpha[20:30, 15:45] = 1.0
    params = {"type": "straight", "extent_px": 10.0, "angle_deg": 0.0}
    out = apply_blur(params, alpha[..., None].repeat(3, 2), alpha)
    rows, cols = np.nonzero(out.alpha)
    assert (rows.min(), rows.max()) == (20, 29)
    assert (cols.min(), cols.max()) == (10, 49)  # 15 - 5 .. 44 + 5: half the extent either side
    assert out.alpha[25, 30] == pytest.approx(1.0) and out.alpha[25, 10] < 0.1


# --- direction: a bright pixel lands on the path ---------------------------------------------------

def test_curved_blur_moves_a_bright_pixel_along_the_sampled_path_not_its_mirror():
    shape, (px, py) = (64, 64), (30, 34)
    alpha = np.zeros(shape, np.float32)
    alpha[py, px] = 1.0
    colour = np.array([1.0, 0.5, 0.25], np.float32)
    params = sample_params("curved", item_rng(4, 9), 18.0, alpha, BlurSection(curvature=(0.5, 0.5)))
    out = apply_blur(params, alpha[..., None] * colour, alpha)

    # Analytic: the time-average of a quadratic Bezier is (P0 + P1 + P2) / 3.
    p = np.asarray(params["control_points"])
    mean = p.mean(axis=0)
    assert np.hypot(*mean) > 0.8  # asymmetric enough for a mirror image to be far off
    ys, xs = np.mgrid[:64, :64]
    centroid = np.array([(out.alpha * xs).sum(), (out.alpha * ys).sum()]) / out.alpha.sum()
    assert np.allclose(centroid, (px + mean[0], py + mean[1]), atol=0.02)

    # Independent splat of the exact time integral (many time samples) at p(t), and its mirror.
    t = (np.arange(4000) + 0.5) / 4000
    path = motion.bezier_points(p, t)
    weights = np.full(len(t), 1.0 / len(t))
    expected = splat_image(shape, path + (px, py), weights)
    mirrored = splat_image(shape, -path + (px, py), weights)
    assert np.abs(out.alpha - expected).sum() < 0.05  # total misplaced coverage (of 1)
    assert np.abs(out.alpha - mirrored).sum() > 0.5
    assert np.allclose(out.foreground, out.alpha[..., None] * colour, atol=1e-6)


def test_random_walk_pixel_spreads_along_its_path():
    alpha = np.zeros((80, 80), np.float32)
    alpha[40, 40] = 1.0
    params = sample_params("random_walk", item_rng(2, 3), 25.0, alpha)
    out = apply_blur(params, alpha[..., None], alpha)
    assert out.foreground.shape == (80, 80, 1)
    points, weights = motion.resample_path(np.asarray(params["path"]))
    assert np.abs(out.alpha - splat_image((80, 80), points + 40, weights)).max() < 1e-5
    assert out.extent[out.alpha > 0] == pytest.approx(25.0, abs=1e-4)


# --- rolling shutter --------------------------------------------------------------------------------

def _row_centroids(alpha: np.ndarray, rows: range) -> np.ndarray:
    xs = np.arange(alpha.shape[1])
    return np.array([(alpha[r] * xs).sum() / alpha[r].sum() for r in rows])


def test_rolling_shutter_shift_grows_linearly_with_the_row_along_the_motion():
    alpha = np.zeros((120, 90), np.float32)
    alpha[15:105, 40:46] = 1.0  # a vertical bar, centroid column 42.5, centroid row 59.5
    shape = BlurSection(readout=(2.0, 2.0))
    params = dict(sample_params("rolling", item_rng(0, 1), 12.0, alpha, shape), angle_deg=0.0)
    assert params["center_row"] == pytest.approx(59.5)
    assert params["row_shift_px"] == pytest.approx(2.0 * 12.0 / 120)  # readout * L / H
    out = apply_blur(params, alpha[..., None], alpha)
    rows = range(25, 95)
    measured = _row_centroids(out.alpha, rows)
    expected = 42.5 + params["row_shift_px"] * (np.array(rows) - 59.5)
    # OpenCV resamples at 1/32 px, so centroids are good to 1/64 px.
    assert np.abs(measured - expected).max() < 0.02  # right (+x) below the centre row
    assert np.abs(measured - (85.0 - expected)).max() > 1.0  # the mirrored direction fails
    assert out.extent[out.alpha > 0] == pytest.approx(12.0, abs=1e-4)

    backwards = apply_blur(dict(params, angle_deg=180.0), alpha[..., None], alpha)
    assert np.abs(_row_centroids(backwards.alpha, rows) - (85.0 - expected)).max() < 0.02


def test_rolling_readout_is_capped_so_rows_do_not_tear():
    alpha = disc((40, 40), (20, 20), 8)
    params = sample_params("rolling", item_rng(0, 0), 30.0, alpha, BlurSection(readout=(3.0, 3.0)))
    assert params["row_shift_px"] <= rolling.MAX_ROW_SHIFT_PX + 1e-12
    with pytest.raises(BlurgenError, match="row shift"):
        apply_blur(dict(params, row_shift_px=1.0, angle_deg=90.0), alpha[..., None], alpha)


# --- edge ring --------------------------------------------------------------------------------------

def test_edge_ring_changes_only_its_band():
    size, radius, band, length = 96, 26.0, 4.0, 10.0
    alpha = disc((size, size), (47.5, 48.0), radius)
    fg = texture((size, size), 1) * alpha[..., None]
    fg[2, 3] = 0.7  # colour where alpha is 0, far from the band: must survive untouched
    params = {"type": "edge_ring", "extent_px": length, "angle_deg": 20.0, "band_px": band}
    out = apply_blur(params, fg, alpha)

    ys, xs = np.mgrid[:size, :size]
    dist = np.abs(np.hypot(xs - 47.5, ys - 48.0) - radius)  # distance to the boundary
    far = dist >= band + 1.5
    assert np.array_equal(out.foreground[far], fg[far]) and np.array_equal(out.alpha[far], alpha[far])
    assert not out.extent[far].any()
    near = dist <= 1.0
    assert np.abs(out.alpha - alpha)[near].max() > 0.1  # the boundary is smeared
    inner = (dist <= band - 2.0) & (out.alpha > 0)
    assert out.extent[inner] == pytest.approx(length, abs=1e-5)
    assert 0 <= out.extent.min() and out.extent.max() <= length + 1e-5
    assert out.alpha.min() >= 0 and out.alpha.max() <= 1


# --- zoom with rotation -----------------------------------------------------------------------------

@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_zoom_rotation_extent_grows_from_zero_at_the_centre(share):
    size, c, radius = 100, (49.0, 51.0), 30.0
    alpha = disc((size, size), c, radius)
    fg = texture((size, size), 2) * alpha[..., None]
    shape = BlurSection(zoom_share=(share, share))
    params = sample_params("zoom_rotation", item_rng(3, 3), 12.0, alpha, shape)
    assert np.allclose(params["center"], c, atol=1e-3)  # the alpha centroid
    r_max = np.hypot(*(np.argwhere(alpha > 0) - (c[1], c[0])).T).max()
    kappa = zoom_rotation.zoom_kappa(params["log_scale"], math.radians(params["rotation_deg"]))
    assert r_max * kappa == pytest.approx(12.0, rel=1e-9) and params["extent_px"] == pytest.approx(12.0)
    if share == 0.0:
        assert params["log_scale"] == 0.0
    if share == 1.0:
        assert params["rotation_deg"] == 0.0
    out = apply_blur(params, fg, alpha)

    # The pixel on the centre (a fixed point of every warp) holds content at radii 0 to 0.7 px:
    # it reads their mean motion, kappa times a unit square's mean distance from its centre
    # (0.38260, a double integral done by hand), not 0.
    assert out.extent[51, 49] == pytest.approx(kappa * 0.38260, rel=1e-3)
    covered = out.alpha > 1e-3
    assert out.extent[covered].max() == pytest.approx(12.0, abs=0.5)
    assert out.extent.max() <= 12.0 + 1e-4  # a weighted mean of source extents
    ys, xs = np.mgrid[:size, :size]
    r = np.hypot(xs - c[0], ys - c[1])
    rings = [out.extent[(r >= lo) & (r < lo + 4) & covered].mean() for lo in (4, 12, 20)]
    assert rings[0] < rings[1] < rings[2]
    assert rings == pytest.approx([kappa * (lo + 2) for lo in (4, 12, 20)], rel=0.1)
    assert abs(out.alpha.sum() / alpha.sum() - 1.0) < 0.1 + 0.5 * share  # area changes only by zooming


def test_zoom_two_level_copies_match_direct_copies(monkeypatch):
    alpha = disc((90, 90), (45, 44), 30)
    fg = texture((90, 90), 4) * alpha[..., None]
    params = sample_params("zoom_rotation", item_rng(6, 1), 20.0, alpha)
    two_level = apply_blur(params, fg, alpha)
    monkeypatch.setattr(zoom_rotation, "ZOOM_DIRECT_COPIES", 10**6)
    direct = apply_blur(params, fg, alpha)
    assert np.abs(two_level.alpha - direct.alpha).max() < 0.04
    assert np.abs(two_level.foreground - direct.foreground)[alpha > 0].mean() < 0.005


# --- channels and dtypes ----------------------------------------------------------------------------

def test_single_channel_and_float64_inputs():
    alpha = disc((30, 30), (15, 15), 7)
    params = {"type": "curved", "extent_px": 6.0, "angle_deg": 0.0,
              "control_points": motion.curved_control_points(6.0, 0.0, 0.3).tolist()}
    flat = apply_blur(params, alpha.astype(np.float64), alpha)
    assert flat.foreground.shape == (30, 30) and flat.foreground.dtype == np.float32
    one = apply_blur(params, alpha[..., None], alpha)
    assert one.foreground.shape == (30, 30, 1)
    assert np.array_equal(flat.foreground, one.foreground[..., 0]) and np.allclose(flat.foreground, flat.alpha)


# --- the registry ----------------------------------------------------------------------------------

def test_the_registry_is_the_one_list_of_types_and_each_entry_is_complete():
    import dataclasses

    from blurgen.composite.blurs import REGISTRY
    from blurgen.composite.config import STAGES

    choices = {f.name: f.metadata["choices"] for f in dataclasses.fields(BlurSection)}
    assert choices["types"] == BLUR_TYPES == tuple(REGISTRY)
    assert all(set(types) <= set(BLUR_TYPES) for types, _ in STAGES.values())
    assert STAGES["advanced"][0] == BLUR_TYPES
    for entry in REGISTRY.values():
        assert callable(entry.impl.draw) and callable(entry.impl.apply)
        assert callable(getattr(entry.impl, "band", None)) == entry.band
    # the paper's shape-dependent types draw for the dilated support; edge ring works in a band
    assert {e.name for e in REGISTRY.values() if e.dilated_support} == {"zoom_rotation", "rolling"}
    assert {e.name for e in REGISTRY.values() if e.band} == {"edge_ring"}


def test_the_config_reads_the_type_names_without_loading_the_operators():
    import subprocess
    import sys

    code = "import sys, blurgen.composite.config; print(sorted(m for m in sys.modules if m in ('cv2', " \
           "'blurgen.composite.blurs.straight', 'blurgen.composite.blurs.base')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_new_type_needs_only_its_module_and_a_registration(monkeypatch):
    """A seventh type (vertical motion, a module made here) works through sampling, the operator
    and the compositing once registered; nothing else names it."""
    import sys
    import types

    from blurgen.composite.blurs import REGISTRY, BlurType
    from blurgen.composite.blurs.base import space_invariant
    from blurgen.composite.compose import blur_instance

    module = types.ModuleType("vertical_blur")
    module.draw = lambda rng, extent_px, alpha, ranges: {"angle_deg": 90.0}
    module.path = lambda params: np.array([[0.0, -0.5], [0.0, 0.5]]) * float(params["extent_px"])
    module.apply = lambda params, fg, alpha, bbox: space_invariant(module.path(params), fg, alpha, bbox)
    monkeypatch.setitem(sys.modules, "vertical_blur", module)
    monkeypatch.setitem(REGISTRY, "vertical", BlurType("vertical", "vertical_blur"))

    alpha = (disc((60, 40), (20, 30), 6.0) > 0.5).astype(np.float32)
    params = sample_params("vertical", item_rng(0, 0), 12.0, alpha)
    assert params == {"type": "vertical", "extent_px": 12.0, "angle_deg": 90.0}
    psf = psf_for(params)
    assert np.count_nonzero(psf.sum(axis=0)) == 1  # one column: motion along y only
    image = np.zeros((60, 40, 3), np.float32)
    outcome = blur_instance(image + alpha[..., None], alpha > 0, params, feather_px=0, fill_margin_px=0)
    _, _, changed, extent = outcome.full(image)
    rows, cols = np.nonzero(changed)
    assert rows.max() - rows.min() > cols.max() - cols.min() + 10  # streaked along y by ~12 px
    np.testing.assert_allclose(extent[changed & (extent > 0)], 12.0, rtol=1e-4)


@pytest.mark.parametrize("dtype", [np.float32, np.uint8])
@pytest.mark.parametrize("channels", [(), (3,)])
def test_copy_where_is_a_masked_assignment_into_a_view(dtype, channels):
    """copy_where(dst, src, mask) does what numpy's ``dst[mask] = src[mask]`` does, in a view of
    a larger array (the rest of it untouched), with a strided mask and a float64 source."""
    rng = np.random.default_rng(4)
    full = (rng.random((20, 30) + channels) * 200).astype(dtype)
    src = rng.random((8, 11) + channels) * 200  # float64: cast to dst's dtype like numpy's
    mask = (rng.random((16, 22)) < 0.4)[::2, ::2]
    expected = full.copy()
    expected[5:13, 7:18][mask] = src.astype(dtype)[mask]
    copy_where(full[5:13, 7:18], src, mask)
    assert np.array_equal(full, expected)
