"""The exact coverage the render labels use (blurgen/render/coverage.py): analytic cases without
Blender, then real Blender at tiny sizes (slow): labels independent of the colour samples, and
no low-sample bias against a high-sample render."""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from blurgen.assets.config import DemoAssetsConfig
from blurgen.assets.demo import make_demo_assets
from blurgen.config import resolve_config
from blurgen.render.blender import RenderedItem, blender_job, render_batch
from blurgen.render.config import RenderConfig
from blurgen.render.coverage import MeshCoverage, filter_taps
from blurgen.render.labels import blur_severity
from blurgen.render.manifests import load_manifests
from blurgen.render.plan import make_plan
from blurgen.render.prepare import prepare_item
from blurgen.render.samples import item_samples

FOCAL = 100.0  # px
DEPTH = 2.0  # m: a metre at this depth is FOCAL / DEPTH = 50 px
W, H = 160, 80


def square(side_px: float, centre_px: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
    """A square facing the camera at DEPTH, ``side_px`` wide, centred at ``centre_px`` (pixels)."""
    m = DEPTH / FOCAL  # metres per pixel at DEPTH
    cx, cy = (centre_px[0] - W / 2) * m, (centre_px[1] - H / 2) * m
    h = side_px * m / 2
    vertices = np.array([[cx - h, cy - h, DEPTH], [cx + h, cy - h, DEPTH],
                         [cx + h, cy + h, DEPTH], [cx - h, cy + h, DEPTH]])
    return vertices, np.array([[0, 1, 2], [0, 2, 3]])


def moving_right(speed_px: float):
    """Pose at instant t: a translation of ``speed_px * t`` pixels along x (parallel to the image)."""
    def pose_at(t: float) -> np.ndarray:
        pose = np.eye(4)
        pose[0, 3] = speed_px * t * DEPTH / FOCAL
        return pose
    return pose_at


K = np.array([[FOCAL, 0.0, W / 2], [0.0, FOCAL, H / 2], [0.0, 0.0, 1.0]])


def swept_fraction(x: np.ndarray, left: float, right: float, travel: float) -> np.ndarray:
    """Share of the exposure during which point x lies in [left + s, right + s], s from 0 to travel.

    The closed form the test holds the rasteriser to: the overlap of [x - right, x - left] with
    [0, travel], divided by travel.
    """
    lo, hi = np.maximum(x - right, 0.0), np.minimum(x - left, travel)
    return np.clip(hi - lo, 0.0, None) / travel


def test_a_square_moving_at_a_known_speed_has_the_closed_form_coverage_along_its_motion():
    side, travel = 20.0, 40.0
    vertices, faces = square(side, (40.0, 40.0))  # spans x 30..50, y 30..50 at t = 0
    mesh = MeshCoverage(vertices, faces, moving_right(travel), K, (W, H))
    alpha = mesh.alpha(0.0, 1.0)
    centres = np.arange(W) + 0.5
    expected = swept_fraction(centres, 30.0, 50.0, travel)
    # Where the closed form is linear across the filter's reach (1.5 px from each kink), a
    # symmetric filter leaves it unchanged: rows well inside the square, columns off the kinks.
    kinks = np.array([30.0, 50.0, 70.0, 90.0])
    smooth = np.min(np.abs(centres[:, None] - kinks[None, :]), axis=1) > 1.6
    row = alpha[40]
    assert np.abs(row[smooth] - expected[smooth]).max() < 0.01
    assert abs(float(row[(centres > 52) & (centres < 68)].mean()) - side / travel) < 0.002  # plateau 0.5
    # the swept region's ends are where the motion puts them: coverage stops within the
    # filter's reach of x = 30 and x = 90, and a pixel whose centre is a pixel inside is covered
    covered = np.flatnonzero(row > 0)
    assert 28 <= covered[0] <= 30 and 89 <= covered[-1] <= 91
    assert row[31] > 0 and row[88] > 0
    # no sample noise: rows away from the square's top and bottom edges are equal
    assert np.array_equal(alpha[35], alpha[45])


def test_a_still_square_is_opaque_inside_and_its_edge_integrates_the_filter():
    vertices, faces = square(21.0, (40.0, 40.0))  # x from 29.5 to 50.5: the edge on a pixel border
    alpha = MeshCoverage(vertices, faces, moving_right(0.0), K, (W, H)).alpha(0.0)
    assert np.allclose(alpha[32:48, 32:48], 1.0, atol=1e-6)
    # total coverage is the square's area: the filter is normalised (within the rasteriser's
    # dilation of about half a supersample, 1/16 px, around the 84 px perimeter)
    assert abs(float(alpha.sum()) - 21.0 ** 2) < 84 * 0.1
    # a symmetric filter: the pixel centred on the edge (x = 29.5) is half covered, and two
    # pixels mirrored across the edge add up to 1
    weights, reach = filter_taps(8, 1.5)
    assert reach == 1 and math.isclose(weights.sum(), 1.0)
    assert abs(float(alpha[40, 29]) - 0.5) < 0.01
    assert abs(float(alpha[40, 28] + alpha[40, 30]) - 1.0) < 0.01
    assert 0 < alpha[40, 28] < 0.05  # the filter reaches 1.5 px: a pixel off the edge sees it


def test_bad_meshes_are_refused():
    with pytest.raises(ValueError):
        MeshCoverage(np.zeros((3, 2)), np.array([[0, 1, 2]]), moving_right(1.0), K, (W, H))
    with pytest.raises(ValueError):
        MeshCoverage(np.zeros((3, 3)), np.array([[0, 1, 3]]), moving_right(1.0), K, (W, H))


# ---------------------------------------------------------------- real Blender (slow)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("assets")
    demo = make_demo_assets(root, DemoAssetsConfig(categories=2, objects_per_category=1, texture_size=64,
                                                   backgrounds=2, background_width=160,
                                                   background_height=120, preview=False))
    config = resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={demo.objects}", f"assets.backgrounds={demo.backgrounds}",
        "assets.objects_per_category=1", "trajectory.per_object=1", "camera.width=96",
        "camera.height=72", "images.max_window=6", "labels.erosion_px=1", "output.preview=false"])
    objects, backgrounds = load_manifests(config)
    plan = make_plan(config, objects, backgrounds)
    return config, plan, [prepare_item(config, plan, item) for item in plan.items[:2]], root


def rendered_at(scene, spp: int, work: Path) -> list[dict]:
    config, plan, prepared, _ = scene
    config = dataclasses.replace(config, cycles=dataclasses.replace(config.cycles, samples=spp))
    results = render_batch(blender_job(config, plan, prepared, work, threads=0), work)
    assert all(isinstance(r, RenderedItem) for r in results.values())
    return [results[p.item.item_id].load() for p in prepared]


def labelled(config: RenderConfig, prepared, rendered) -> dict[str, dict]:
    dropped = Counter()
    return {s["sample_id"]: s for p, a in zip(prepared, rendered) for s in item_samples(config, p, a, dropped)}


@pytest.mark.slow
def test_labels_are_the_same_at_1_and_16_spp_and_the_low_sample_bias_is_gone(scene, tmp_path):
    config, _, prepared, _ = scene
    low, high = rendered_at(scene, 1, tmp_path / "s1"), rendered_at(scene, 16, tmp_path / "s16")
    # the images differ (noise), the labels do not: they never look at the colour samples
    assert not np.array_equal(low[0]["layers"], high[0]["layers"])
    a, b = labelled(config, prepared, low), labelled(config, prepared, high)
    assert a.keys() == b.keys() and len(a) >= 4
    for sid in a:
        for field in ("alpha", "blur_severity", "blur_level", "bbox", "truncated"):
            assert np.array_equal(a[sid][field], b[sid][field]), (sid, field)

    # Against a 128-spp render's alpha: the old labels at 1 spp read low (faint tails get no
    # sample), the exact coverage's do not.
    ref = rendered_at(scene, 128, tmp_path / "s128")
    old = dataclasses.replace(config, labels=dataclasses.replace(config.labels, coverage="render"))
    truth = {sid: float(s["blur_severity"]) for sid, s in labelled(old, prepared, ref).items()}
    old_low = {sid: float(s["blur_severity"]) for sid, s in labelled(old, prepared, low).items()}
    blurred = [sid for sid in truth if sid in a and sid in old_low and not sid.endswith("sharp")]
    assert len(blurred) >= 3
    shift_old = np.mean([old_low[s] - truth[s] for s in blurred])
    shift_new = np.mean([float(a[s]["blur_severity"]) - truth[s] for s in blurred])
    assert shift_old < -0.02  # the bias, as measured before (docs/render.md)
    assert abs(shift_new) < 0.01, (shift_new, shift_old)
    # and the exact alpha is the high-sample render's, pixel by pixel, within its noise
    for sid in blurred:
        k = int(sid[-5:-3])
        start = int(sid[-2:])
        first = int(ref[0]["layer_indices"][0])
        item = 0 if sid in labelled(config, prepared[:1], low[:1]) else 1
        cycles = ref[item]["layers"][start - first:start - first + k, ..., 3].mean(axis=0)
        assert np.abs(a[sid]["alpha"] - cycles).mean() < 0.01
    assert blur_severity(a[blurred[0]]["alpha"], config.labels.erosion_px) == pytest.approx(
        float(a[blurred[0]]["blur_severity"]), abs=1e-6)
