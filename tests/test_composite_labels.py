"""The label contract of ``blurgen composite`` samples (issue 14), on imprecise masks.

``image == sharp`` bit for bit outside ``blur_mask``, and ``blur_intensity > 0`` on every pixel
of it (0 outside): for every blur type, both coverage modes that blur, both sampling modes,
photometric effects on and off, with SAM-like masks that miss or overshoot each object's rim
by a few pixels (the procedural photos' exact masks eroded or dilated).
"""

from __future__ import annotations

import json

import numpy as np
import pytest

import blurgen.composite.sample as sample_module
from blurgen.composite.blurs import BLUR_TYPES
from blurgen.composite.config import KIND, CompositeConfig
from blurgen.composite.plan import CompositeItem
from blurgen.composite.procedural import procedural_source
from blurgen.composite.sources import SourceData, SourceRef
from blurgen.config import resolve_config
from composite_fixtures import grown_mask

PHOTOS = 2
SAMPLES_PER_CASE = 3


def sam_like_source(index: int) -> SourceData:
    """Procedural photo ``index`` whose instance masks miss (erode) or overshoot (dilate) the
    painted object's rim by 1-3 px, a different error per instance."""
    image, masks, names = procedural_source(7, index, 160, 120)
    rng = np.random.default_rng(index)
    wrong = np.zeros_like(masks)
    for i, mask in enumerate(masks):
        rim = int(rng.integers(1, 4))
        wrong[i] = grown_mask(mask, rim if rng.random() < 0.5 else -rim)
    assert (wrong != masks).any(axis=(1, 2)).all()  # every mask is off the object's rim
    return SourceData(f"sam-like-{index}", image, wrong, names)


@pytest.fixture(scope="module")
def photos() -> list[SourceData]:
    return [sam_like_source(i) for i in range(PHOTOS)]


def case_config(kind: str, coverage: str, mask_centric: float, photometric: float) -> CompositeConfig:
    return resolve_config(CompositeConfig, KIND, preset="demo", overrides={
        "samples": {"width": 96, "height": 80, "min_instance_px": 16, "mask_centric": mask_centric},
        "blur": {"types": [kind]},
        "coverage": {"sharp": 0.0, "full": float(coverage == "full"), "partial": float(coverage == "partial")},
        "photometric": {"probability": photometric}})


@pytest.mark.parametrize("kind", BLUR_TYPES)
def test_image_equals_sharp_outside_the_mask_and_the_motion_is_seen_on_all_of_it(kind, photos, monkeypatch):
    cases = [(coverage, centric, photometric) for coverage in ("full", "partial")
             for centric in (0.0, 1.0) for photometric in (0.0, 1.0)]
    blurred = moved = moved_and_differs = 0
    for number, (coverage, centric, photometric) in enumerate(cases):
        config = case_config(kind, coverage, centric, photometric)
        for k in range(SAMPLES_PER_CASE):
            item_id = number * SAMPLES_PER_CASE + k
            photo = photos[item_id % PHOTOS]
            item = CompositeItem(item_id, SourceRef(photo.source_id, None, item_id % PHOTOS), "train")
            # As stored: 8-bit image and sharp.
            sample = sample_module.make_sample(config, item, photo)
            mask, intensity = sample["blur_mask"], sample["blur_intensity"]
            assert sample["mode"] == ("mask" if centric else "image")
            assert bool(json.loads(sample["photometric"])) == bool(photometric)
            assert np.array_equal(sample["image"][~mask], sample["sharp"][~mask])
            assert (intensity[mask] > 0).all(), f"{coverage} {centric} {photometric}: mask pixels with intensity 0"
            assert not intensity[~mask].any()
            blurred += bool(mask.any())
            # Before the 8-bit encoding (identity), with every instance's whole window of the
            # image written (the stored image takes sharp's pixels outside the mask, so only
            # the image as composited can show a difference there): the pair differs nowhere
            # outside the mask, and on these textured photos almost everywhere in it (a flat
            # patch moving along itself, a blend weight of a few ulps, or clipping after the
            # photometric effects may leave a moving pixel equal to its sharp one).
            with monkeypatch.context() as patch:
                patch.setattr(sample_module, "linear_to_srgb_uint8", lambda x: np.array(x, np.float32))
                patch.setattr(sample_module, "_encode_where",
                              lambda where, linear, out: out.__setitem__(Ellipsis, linear))
                linear = sample_module.make_sample(config, item, photo)
            np.testing.assert_array_equal(linear["blur_mask"], mask)
            differs = (linear["image"] != linear["sharp"]).any(axis=2)
            assert not differs[~mask].any()
            moved += np.count_nonzero(mask)
            moved_and_differs += np.count_nonzero(differs)
    assert moved_and_differs >= 0.99 * moved
    assert blurred >= len(cases) * SAMPLES_PER_CASE - 2  # (nearly) every sample blurs something


def test_a_later_instance_keeps_the_streaks_of_an_earlier_one_beyond_its_own_pixels():
    """Two instances blurred one after the other (as image-centric samples do): the second one
    changes image and sharp only in its removal region and its own streak; the first one's
    streak elsewhere in the second one's reach stays in the image, and image == sharp wherever
    neither instance changed anything."""
    from blurgen.composite.compose import blur_instance
    from blurgen.composite.blurs.dispatch import sample_params

    rng = np.random.default_rng(5)
    image = rng.random((90, 140, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:90, 0:140]
    first = (xx - 45) ** 2 + (yy - 45) ** 2 < 14 ** 2
    second = (xx - 95) ** 2 + (yy - 45) ** 2 < 14 ** 2
    feather, margin = 3, 2
    along_x = {"type": "straight", "extent_px": 30.0, "angle_deg": 0.0}
    one = blur_instance(image, first, along_x, feather_px=feather, fill_margin_px=margin)
    image1, sharp1, changed1, _ = one.full(image)
    params = sample_params("zoom_rotation", rng, 8.0, second)
    two = blur_instance(image1, second, params, feather_px=feather, fill_margin_px=margin, sharp=sharp1)
    image2, sharp2, changed2, _ = two.full(image1, sharp1)
    assert changed1[:, 60:80].any()  # the first streak reaches into the second one's reach
    removal2 = grown_mask(second, feather + margin)
    untouched = ~(removal2 | changed2)
    assert np.array_equal(image2[untouched], image1[untouched])
    assert np.array_equal(sharp2[untouched], sharp1[untouched])
    neither = ~(changed1 | changed2)
    assert np.array_equal(image2[neither], sharp2[neither])


@pytest.mark.parametrize("log_scale, rotation_deg", [(0.3, 0.0), (0.0, 25.0), (-0.2, -15.0)])
def test_a_zoom_centred_on_a_pixel_centre_moves_that_pixel_too(log_scale, rotation_deg):
    """A disc whose centroid is a pixel centre: every pixel that changes, the centre one
    included, has a positive extent (its content spans radii up to 0.7 px, not 0), and the
    extents still follow kappa * r: the pixel 10 px from the centre reads about 10 kappa."""
    from blurgen.composite.blurs.zoom_rotation import zoom_kappa
    from blurgen.composite.compose import blur_instance

    rng = np.random.default_rng(3)
    image = rng.random((81, 81, 3)).astype(np.float32)
    yy, xx = np.mgrid[0:81, 0:81]
    disc = (xx - 40) ** 2 + (yy - 40) ** 2 < 15 ** 2
    params = {"type": "zoom_rotation", "center": [40.0, 40.0], "log_scale": log_scale,
              "rotation_deg": rotation_deg, "zoom_share": 0.5, "extent_px": 1.0}
    _, _, changed, extent = blur_instance(image, disc, params, feather_px=0, fill_margin_px=0).full(image)
    assert changed[40, 40]
    assert (extent[changed] > 0).all()
    kappa = zoom_kappa(log_scale, np.radians(rotation_deg))
    assert extent[40, 50] == pytest.approx(10 * kappa, rel=0.05)
