"""``blurgen composite`` end to end: exact masks and intensities, sampling rules, determinism, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli import main
import blurgen.composite.sample as sample_module
from blurgen.color import linear_to_srgb_uint8, srgb_to_linear
from blurgen.composite.blurs import BLUR_TYPES
from blurgen.composite.blurs.dispatch import apply_blur, blur_reach, sample_params
from blurgen.composite.compose import blur_instance, feather_radius
from blurgen.composite.coverage import partial_weight
from blurgen.composite.mask_sources import mask_source
from blurgen.composite.config import KIND, STAGES, CompositeConfig
from blurgen.composite.pipeline import composite_dataset
from blurgen.composite.plan import CompositeItem, list_sources, make_plan
from blurgen.composite.sources import SourceData, load_source, procedural_refs
from blurgen.config import resolve_config
from blurgen.shards import ShardDataset, verify_dir
from composite_fixtures import grown_mask
from shard_fixtures import assert_same_samples, assert_same_shard_bytes, samples_by_id

TINY = {"sources": {"procedural_count": 4, "procedural_size": [160, 120]},
        "samples": {"per_source": 3, "width": 96, "height": 80, "min_instance_px": 16}}


def tiny(**sections) -> CompositeConfig:
    overrides = json.loads(json.dumps(TINY))
    for name, values in sections.items():
        overrides.setdefault(name, {}).update(values) if isinstance(values, dict) else overrides.update({name: values})
    return resolve_config(CompositeConfig, KIND, preset="demo", overrides=overrides)


class Full:
    """blur_instance's outcome as full-size arrays."""

    def __init__(self, image: np.ndarray, mask: np.ndarray, params: dict, **kwargs) -> None:
        self.image, self.sharp, self.changed, self.extent = blur_instance(image, mask, params, **kwargs).full(image)


def disc(h: int, w: int, cx: float, cy: float, r: float) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    return (xx + 0.5 - cx) ** 2 + (yy + 0.5 - cy) ** 2 <= r * r


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("reference")
    summary = composite_dataset(tiny(), out, progress=False)
    assert sum(t.samples for t in summary.tasks) == 12
    return out


# -- one instance, against the analytic case -----------------------------------------------------

def test_straight_blur_of_a_disc_changes_exactly_its_capsule_with_intensity_L():
    h, w, L, r = 96, 128, 20.0, 15.0
    rng = np.random.default_rng(0)
    image = np.full((h, w, 3), 0.2, np.float32) + rng.uniform(0, 0.05, (h, w, 3)).astype(np.float32)
    mask = disc(h, w, 64, 48, r)
    image[mask] = [0.9, 0.1, 0.1]
    params = sample_params("straight", rng, L, mask)
    params["angle_deg"] = 0.0  # along x
    out = Full(image, mask, params, feather_px=0, fill_margin_px=0)
    # changed = within r of the segment from (64 - L/2, 48) to (64 + L/2, 48), up to a pixel
    yy, xx = np.mgrid[0:h, 0:w] + 0.5
    dx = np.clip(xx, 64 - L / 2, 64 + L / 2)
    capsule_dist = np.hypot(xx - dx, yy - 48)
    assert out.changed[capsule_dist <= r - 1].all()
    assert not out.changed[capsule_dist >= r + 1].any()
    # outside the changed pixels: the input, bit for bit
    assert np.array_equal(out.image[~out.changed], image[~out.changed])
    # intensity: L wherever the blurred disc's coverage reaches
    np.testing.assert_allclose(out.extent[out.changed & (capsule_dist <= r - 1)], L, rtol=1e-4)
    # the streak's colour: full red along the centre line where every copy overlaps
    assert np.allclose(out.image[48, 64], [0.9, 0.1, 0.1], atol=1e-4)


def test_zero_extent_changes_nothing():
    image = np.random.default_rng(1).random((40, 40, 3)).astype(np.float32)
    mask = disc(40, 40, 20, 20, 8)
    params = sample_params("straight", np.random.default_rng(2), 0.0, mask)
    out = Full(image, mask, params, feather_px=3, fill_margin_px=2)
    assert np.array_equal(out.image, image) and not out.changed.any() and not out.extent.any()


def test_partial_weight_zero_changes_nothing_and_one_is_full_coverage():
    rng = np.random.default_rng(3)
    image = rng.random((64, 64, 3)).astype(np.float32)
    mask = disc(64, 64, 32, 32, 12)
    params = sample_params("curved", rng, 10.0, mask)
    full = Full(image, mask, params, feather_px=2, fill_margin_px=1)
    none = Full(image, mask, params, feather_px=2, fill_margin_px=1, weight=np.zeros((64, 64), np.float32))
    ones = Full(image, mask, params, feather_px=2, fill_margin_px=1, weight=np.ones((64, 64), np.float32))
    assert not none.changed.any() and np.array_equal(none.image, image)
    assert np.array_equal(ones.changed, full.changed) and np.allclose(ones.image, full.image)


def test_removed_instance_leaves_no_sharp_ghost_under_its_streak():
    """Composited over the image *without* the instance: a far-moved instance's old place shows
    background, not the instance at (1 - alpha_b) strength."""
    h, w = 64, 160
    image = np.full((h, w, 3), 0.5, np.float32)
    mask = disc(h, w, 40, 32, 10)
    image[mask] = [0.0, 0.0, 1.0]
    params = sample_params("straight", np.random.default_rng(4), 60.0, mask)
    params["angle_deg"] = 0.0
    out = Full(image, mask, params, feather_px=0, fill_margin_px=1)
    # at the instance's centre alpha_b = 20/60 (the disc's width over the path): the rest is background grey
    blue, grey = np.array([0, 0, 1.0]), np.array([0.5, 0.5, 0.5])
    a = 20.0 / 60.0
    np.testing.assert_allclose(out.image[32, 40], a * blue + (1 - a) * grey, atol=0.02)


@pytest.mark.parametrize("rim_px", [-3, 0, 3])
@pytest.mark.parametrize("coverage", ["full", "partial"])
@pytest.mark.parametrize("kind", BLUR_TYPES)
def test_image_and_sharp_differ_exactly_where_changed_and_the_motion_is_seen_there(kind, coverage, rim_px):
    """The label contract for one instance, every type and coverage, with a mask that misses or
    overshoots the object's rim (SAM-like): on a noise image (no pixel looks like another) image
    and sharp differ in exactly the ``changed`` pixels, every one of them has a positive extent;
    both equal the input outside the removal region (the mask grown by feather and margin) and
    inside the instance away from its feathered edge the sharp image is the input."""
    rng = np.random.default_rng(3)
    image = rng.random((96, 112, 3)).astype(np.float32)
    truth = disc(96, 112, 50, 44, 18)
    image[truth] = 0.5 * image[truth] + np.float32(0.4)  # the object: brighter than its surroundings
    mask = grown_mask(truth, rim_px)
    params = sample_params(kind, rng, 9.0, mask)
    weight = partial_weight(rng, mask, 0.5, 6.0, reach=blur_reach(params) + 2) if coverage == "partial" else None
    feather, margin = 2, 1
    out = Full(image, mask, params, feather_px=feather, fill_margin_px=margin, weight=weight)
    differs = (out.image != out.sharp).any(axis=2)
    assert out.changed.sum() > 300
    np.testing.assert_array_equal(out.changed, differs)
    assert (out.extent[out.changed] > 0).all() and not out.extent[~out.changed].any()
    removal = grown_mask(mask, feather + margin)
    assert np.array_equal(out.sharp[~removal], image[~removal])
    assert np.array_equal(out.image[~(removal | out.changed)], image[~(removal | out.changed)])
    interior = grown_mask(mask, -feather) if weight is None else grown_mask(mask, -feather) & (weight == 0)
    assert np.array_equal(out.sharp[interior], image[interior])


@pytest.mark.parametrize("kind", ["straight", "zoom_rotation", "rolling"])
def test_what_the_mask_leaves_out_is_below_half_an_8bit_step_of_coverage(kind):
    """The other side of an exact mask: the streak's fringe left outside ``changed`` (blurred
    coverage <= 1/512) changes no pixel by more than that share of the contrast. Reference: the
    unthresholded composite ``F_b + (1 - m_b) B`` over a flat background (so the fill B is known)."""
    bg, colour = 0.25, 0.75
    image = np.full((96, 112, 3), bg, np.float32)
    mask = disc(96, 112, 56, 48, 16)
    image[mask] = colour
    params = sample_params(kind, np.random.default_rng(8), 20.0, mask)
    out = Full(image, mask, params, feather_px=0, fill_margin_px=0)
    ideal = apply_blur(params, image * mask[..., None], mask.astype(np.float32))
    reference = ideal.foreground + (1.0 - ideal.alpha)[..., None] * np.float32(bg)
    left_out = ~out.changed & (ideal.alpha > 0)
    assert left_out.any()  # there is a fringe to judge
    assert np.abs(out.image - reference).max() <= (colour - bg) / 512 + 1e-5


@pytest.mark.parametrize("extent, share, max_px, radius", [
    (20.0, 0.25, 6, 5), (8.0, 0.25, 6, 2), (40.0, 0.25, 6, 6), (1.0, 0.25, 6, 0), (9.0, 0.5, 64, 4)])
def test_feather_radius_grows_with_the_motion_extent_and_softens_the_edge_by_that_much(extent, share, max_px,
                                                                                        radius):
    """A white band of rows moving along itself (nothing changes along x) over black: the result
    is the band times its feathered coverage (a box filter of ``radius`` across its edges), and
    the removed (changed) rows reach ``radius`` beyond it."""
    assert feather_radius(extent, share, max_px) == radius  # round(share * extent), at most max_px
    h, w, top, bottom = 64, 48, 20, 40
    image = np.zeros((h, w, 3), np.float32)
    mask = np.zeros((h, w), bool)
    mask[top:bottom] = True  # cut by the frame on both sides: it continues beyond it
    image[mask] = 1.0
    params = {"type": "straight", "extent_px": extent, "angle_deg": 0.0}
    out = Full(image, mask, params, feather_px=feather_radius(extent, share, max_px), fill_margin_px=0)
    # by hand: a band row keeps the share of the rows within radius of it that are the band's
    # (the fill under it is black); the rows outside the band stay black
    rows = np.arange(h)
    band = (rows >= top) & (rows < bottom)
    expected = np.array([np.count_nonzero(band & (abs(rows - y) <= radius)) for y in rows]) / (2 * radius + 1)
    expected = np.where(band, expected, 0.0)
    np.testing.assert_allclose(out.image[:, w // 2, 0], expected, atol=1e-5)
    assert np.array_equal(np.flatnonzero(out.changed[:, w // 2]), np.arange(top - radius, bottom + radius))


# -- samples --------------------------------------------------------------------------------------

def test_outside_the_mask_image_equals_sharp_and_labels_are_consistent(reference):
    ds = ShardDataset(reference)
    blurred = 0
    for sample in ds:
        mask, image, sharp = sample["blur_mask"], sample["image"], sample["sharp"]
        assert mask.dtype == bool and mask.shape == image.shape[:2] == (80, 96)
        assert np.array_equal(image[~mask], sharp[~mask])
        intensity = sample["blur_intensity"]
        assert intensity.dtype == np.float32 and 0.0 <= intensity.min() and intensity.max() <= 1.0
        assert not intensity[~mask].any()
        instances = json.loads(sample["instances"])
        assert bool(sample["blurred"]) == mask.any() == any("params" in i for i in instances)
        for record in instances:
            if record["coverage"] == "sharp":
                assert "params" not in record
        blurred += bool(sample["blurred"])
    assert blurred >= 4


@pytest.mark.parametrize("preset, photometric", [("demo", 0.0), ("paper", 1.0)])
def test_blur_mask_is_exactly_the_pixels_where_image_and_sharp_differ(preset, photometric, monkeypatch,
                                                                      tmp_path):
    """Photometric effects on or off: every pixel outside the mask equals sharp, and on these
    textured photos the mask pixels differ from it (a moving pixel may equal its sharp one only
    by coincidence: a flat patch moving along itself, clipping). Checked before the 8-bit
    encoding (identity here), which may round a change smaller than half a step away; the
    stored bytes outside the mask are checked above, every type: test_composite_labels.py."""
    monkeypatch.setattr(sample_module, "linear_to_srgb_uint8", lambda x: np.array(x, np.float32))
    config = resolve_config(CompositeConfig, KIND, preset=preset,
                            overrides=dict(TINY, photometric={"probability": photometric}))
    masks = mask_source(config, tmp_path)
    blurred = with_photometric = 0
    for item in make_plan(config, list_sources(config)):
        source = load_source(item.source, masks, min_area=config.sources.min_area, max_area=config.sources.max_area)
        sample = sample_module.make_sample(config, item, source)
        differs = (sample["image"] != sample["sharp"]).any(axis=2)
        assert not differs[~sample["blur_mask"]].any()
        assert np.count_nonzero(differs) >= 0.99 * np.count_nonzero(sample["blur_mask"])
        blurred += bool(sample["blurred"])
        with_photometric += bool(json.loads(sample["photometric"]))
    assert blurred >= 4
    assert with_photometric == (12 if photometric else 0)


def _nested_source(w: int = 96, h: int = 80) -> SourceData:
    """A w x h photo with a person (A), a face inside it (B), a box overlapping A by exactly 10 %
    of its own pixels (C), one overlapping A by 11 % (D) and a box apart from all (E)."""
    masks = np.zeros((5, h, w), bool)
    masks[0, 10:50, 10:40] = True   # A: 40 x 30
    masks[1, 15:25, 20:30] = True   # B: 10 x 10, inside A
    masks[2, 40:50, 39:49] = True   # C: 10 x 10, its column 39 (10 px) in A
    masks[3, 49:59, 12:22] = True   # D: 10 x 10, its row 49 (10 px) in A ...
    masks[3, 58, 12] = False
    masks[3, 48, 12] = True         # ... one pixel moved into A: 11 px of 100
    masks[4, 60:75, 70:90] = True   # E: 15 x 20
    image = np.random.default_rng(0).random((h, w, 3)).astype(np.float32)
    return SourceData("nested", image, masks, ["A", "B", "C", "D", "E"])


def test_image_centric_samples_skip_instances_that_overlap_a_chosen_one():
    """An instance sharing more than 10 % of the smaller one's pixels with a chosen instance is
    skipped (nested SAM masks); 10 % exactly is not."""
    source = _nested_source()
    m = source.masks
    assert [int(x.sum()) for x in m] == [1200, 100, 100, 100, 300]  # the hand counts relied on
    assert [int((m[0] & x).sum()) for x in m[1:]] == [100, 10, 11, 0]
    assert not any((m[i] & m[j]).any() for i in range(1, 5) for j in range(i + 1, 5))
    config = tiny(samples={"mask_centric": 0.0, "max_instances": 5},
                  coverage={"sharp": 1.0, "full": 0.0, "partial": 0.0})
    assert (config.samples.width, config.samples.height) == (96, 80)  # the view is the photo
    seen: set[frozenset] = set()
    for item_id in range(60):
        sample = sample_module.make_sample(config, CompositeItem(item_id, procedural_refs(1)[0], "train"), source)
        names = [r["name"] for r in json.loads(sample["instances"])]
        pairs = {frozenset((a, b)) for i, a in enumerate(names) for b in names[i + 1:]}
        assert frozenset("AB") not in pairs and frozenset("AD") not in pairs, names
        seen |= pairs
    assert {frozenset("AC"), frozenset("BD"), frozenset("BC")} <= seen


def test_sharp_coverage_only_gives_negatives():
    config = tiny(coverage={"sharp": 1.0, "full": 0.0, "partial": 0.0})
    plan = make_plan(config, procedural_refs(4))
    from blurgen.composite.procedural import ProceduralMasks
    from blurgen.composite.sample import make_sample
    from blurgen.composite.sources import load_source

    masks = ProceduralMasks(config.seed, (160, 120))
    for item in plan[:6]:
        sample = make_sample(config, item, load_source(item.source, masks, min_area=0.002,
                                                       max_area=0.6))
        assert not sample["blur_mask"].any() and np.array_equal(sample["image"], sample["sharp"])
        assert not sample["blurred"] and sample["blur_types"] == ""


@pytest.mark.parametrize("stage", ["stabilization", "mixed"])
def test_stage_restricts_types_and_keeps_one_type_per_sample(stage, tmp_path):
    config = tiny(blur={"stage": stage}, samples={"mask_centric": 0.0, "max_instances": 4},
                  coverage={"sharp": 0.0, "full": 1.0, "partial": 0.0})
    composite_dataset(config, tmp_path, progress=False)
    allowed, _ = STAGES[stage]
    for sample in ShardDataset(tmp_path):
        types = [i["params"]["type"] for i in json.loads(sample["instances"]) if "params" in i]
        assert set(types) <= set(allowed)
        assert len(set(types)) <= 1  # "mixed instances" only in the advanced stage


def test_split_is_by_source_photo(reference):
    splits: dict[str, set[str]] = {}
    for sample in ShardDataset(reference):
        splits.setdefault(sample["source_id"], set()).add(sample["split"])
    assert all(len(s) == 1 for s in splits.values())
    assert {next(iter(s)) for s in splits.values()} == {"train", "val"}


def test_mask_centric_samples_are_crops_around_one_instance(tmp_path):
    composite_dataset(tiny(samples={"mask_centric": 1.0}), tmp_path, progress=False)
    for sample in ShardDataset(tmp_path):
        assert sample["mode"] == "mask"
        assert len(json.loads(sample["instances"])) <= 1
        x0, y0, x1, y1 = sample["crop"]
        assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120


# -- the job --------------------------------------------------------------------------------------

@pytest.mark.slow
def test_same_samples_however_many_tasks_and_same_bytes_on_rerun(reference, tmp_path):
    composite_dataset(tiny(), tmp_path / "three", num_tasks=3, jobs=2, progress=False)
    assert_same_samples(samples_by_id(reference), samples_by_id(tmp_path / "three"))
    composite_dataset(tiny(), tmp_path / "again", progress=False)
    assert_same_shard_bytes(reference, tmp_path / "again")
    assert verify_dir(reference).ok


def test_a_finished_task_is_skipped_on_rerun(reference, tmp_path):
    summary = composite_dataset(tiny(), reference, progress=False)
    assert all(t.skipped_complete for t in summary.tasks)


def _photo_folder(root: Path) -> tuple[Path, Path]:
    """Three 80 x 60 random photos (RGB, written as BGR by OpenCV) with two labelled instances each."""
    images, masks = root / "images", root / "masks"
    images.mkdir()
    masks.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        photo = (rng.random((60, 80, 3)) * 255).astype(np.uint8)
        cv2.imwrite(str(images / f"p{i}.png"), photo)
        label = np.zeros((60, 80), np.uint8)
        label[10:40, 10:40] = 1
        label[20:50, 50:75] = 2
        cv2.imwrite(str(masks / f"p{i}.png"), label)
    return images, masks


def run_cli(*args: str):
    return CliRunner().invoke(main, ["composite", *args], catch_exceptions=False)


def test_photos_with_mask_files_and_recorded_skips(tmp_path):
    images, masks = _photo_folder(tmp_path)
    (images / "broken.png").write_bytes(b"not a png")
    cv2.imwrite(str(images / "wrong.png"), np.zeros((60, 80, 3), np.uint8))
    cv2.imwrite(str(masks / "wrong.png"), np.zeros((30, 40), np.uint8))  # wrong size
    out = tmp_path / "out"
    result = run_cli("--out", str(out), "--images", str(images), "--masks", str(masks),
                     "--set", "samples.width=40", "--set", "samples.height=30", "--set", "samples.per_source=2",
                     "--set", "samples.min_instance_px=16", "--set", "samples.mask_centric=0")
    assert result.exit_code == 0, result.output
    assert "skipped photos:" in result.output
    assert "mask size mismatch 1" in result.output and "unreadable image 1" in result.output
    ds = ShardDataset(out)
    assert len(ds) == 6 and {s["source_id"] for s in ds} == {"p0.png", "p1.png", "p2.png"}
    # the photo's pixels come through: sharp is the photo's centred crop (all of it: the same
    # aspect), halved by averaging 2 x 2 blocks in linear light, except in the rim of a blurred
    # instance, where the sharp instance sits over the fill (up to feather 6 + margin 2 px out)
    squares = {"label-1": (slice(5, 20), slice(5, 20)), "label-2": (slice(10, 25), slice(25, 38))}
    checked = 0
    for sample in ds:
        photo = cv2.imread(str(images / sample["source_id"]))[:, :, ::-1]
        expected = srgb_to_linear(photo).reshape(30, 2, 40, 2, 3).mean(axis=(1, 3), dtype=np.float64)
        assert tuple(sample["crop"]) == (0, 0, 80, 60) and sample["mode"] == "image"
        rim = np.zeros((30, 40), bool)
        for record in json.loads(sample["instances"]):
            if "params" in record:
                square = np.zeros((30, 40), bool)
                square[squares[record["name"]]] = True
                rim |= grown_mask(square, 9) & ~grown_mask(square, -7)
        difference = sample["sharp"].astype(int) - linear_to_srgb_uint8(expected.astype(np.float32))
        assert np.abs(difference[~rim]).max() <= 1
        checked += np.count_nonzero(~rim)
    assert checked > 500
    assert verify_dir(out).ok


@pytest.mark.parametrize("args, message", [
    (["--images", "EMPTY"], "no images"),
    (["--images", "IMAGES"], "--masks DIR"),
    (["--images", "IMAGES", "--masks", "MASKS", "--set", "blur.stage=stabilization",
      "--set", "blur.types=[zoom_rotation]"], "blur.types"),
])
def test_bad_inputs_give_one_line_and_write_nothing(tmp_path, args, message):
    images, masks = _photo_folder(tmp_path)
    (tmp_path / "empty").mkdir()
    paths = {"EMPTY": str(tmp_path / "empty"), "IMAGES": str(images), "MASKS": str(masks)}
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["composite", "--out", str(out), *[paths.get(a, a) for a in args]])
    assert result.exit_code == 2, result.output
    line = result.output.strip()
    assert message in line and "\n" not in line and "Traceback" not in line
    assert not out.exists() or not any(out.iterdir())


def test_sam_checkpoint_that_is_not_a_checkpoint_is_one_line(tmp_path):
    images, _ = _photo_folder(tmp_path)
    bad = tmp_path / "sam.pth"
    bad.write_bytes(b"garbage")
    result = CliRunner().invoke(main, ["composite", "--out", str(tmp_path / "out"), "--images", str(images),
                                       "--sam-checkpoint", str(bad), "--sam-model", "vit_b"])
    assert result.exit_code == 2 and "\n" not in result.output.strip()
    assert "sam.pth" in result.output


@pytest.mark.parametrize("kind", ["straight", "curved", "zoom_rotation", "random_walk", "edge_ring", "rolling"])
def test_blurring_is_the_same_wherever_the_instance_sits_in_the_frame(kind):
    """blur_instance works in a window around the instance: moving the instance (and its
    absolute-coordinate parameters) within a larger frame must move the result, nothing else."""
    rng = np.random.default_rng(11)
    small = rng.random((64, 80, 3)).astype(np.float32)
    mask = disc(64, 80, 40, 32, 12)
    params = sample_params(kind, rng, 9.0, mask)
    dy, dx = 37, 53
    big = rng.random((160, 200, 3)).astype(np.float32)
    big[dy:dy + 64, dx:dx + 80] = small
    big_mask = np.zeros((160, 200), bool)
    big_mask[dy:dy + 64, dx:dx + 80] = mask
    moved = dict(params)
    if "center" in moved:
        moved["center"] = [params["center"][0] + dx, params["center"][1] + dy]
    if "center_row" in moved:
        moved["center_row"] = params["center_row"] + dy
    a = Full(small, mask, params, feather_px=1, fill_margin_px=1)
    b = Full(big, big_mask, moved, feather_px=1, fill_margin_px=1)
    inner = (slice(dy + 20, dy + 44), slice(dx + 20, dx + 60))  # away from the small frame's border
    local = (slice(20, 44), slice(20, 60))
    assert np.array_equal(a.changed[local], b.changed[inner])
    np.testing.assert_allclose(a.image[local], b.image[inner], atol=2e-3)
    np.testing.assert_allclose(a.extent[local], b.extent[inner], atol=1e-4)


def test_edge_ring_blurs_labels_and_removes_only_its_band():
    rng = np.random.default_rng(5)
    image = rng.random((96, 96, 3)).astype(np.float32) * 0.3
    mask = np.zeros((96, 96), bool)
    mask[20:76, 20:76] = True
    image[mask] = [0.8, 0.6, 0.2]
    image[40:56, 40:56] = [0.1, 0.9, 0.9]  # texture deep inside, far from the band
    params = sample_params("edge_ring", rng, 24.0, mask)
    params["band_px"] = 3.0
    out = Full(image, mask, params, feather_px=6, fill_margin_px=1)
    # the interior more than the band width inside the boundary is untouched and unlabelled
    interior = np.zeros_like(mask)
    interior[20 + 4:76 - 4, 20 + 4:76 - 4] = True
    assert not out.changed[interior].any()
    assert np.array_equal(out.image[interior], image[interior])
    # every labelled pixel is in the band and carries blur
    assert out.changed.any() and (out.extent[out.changed] > 0).all()


def test_an_instance_cut_by_the_frame_keeps_full_coverage_up_to_the_frame_edge():
    image = np.full((64, 128, 3), 0.2, np.float32)
    mask = np.zeros((64, 128), bool)
    mask[16:48, 0:40] = True  # runs off the left edge
    image[mask] = 0.8
    params = sample_params("straight", np.random.default_rng(6), 30.0, mask)
    params["angle_deg"] = 0.0
    out = Full(image, mask, params, feather_px=0, fill_margin_px=0)
    # the object continues beyond the frame: at the left edge its blur still sees object only
    np.testing.assert_allclose(out.image[20:44, 0:20], 0.8, atol=1e-4)


def test_zoom_intensity_never_exceeds_the_recorded_extent(tmp_path):
    config = tiny(blur={"types": ["zoom_rotation"]}, samples={"mask_centric": 1.0},
                  coverage={"sharp": 0.0, "full": 1.0, "partial": 0.0})
    composite_dataset(config, tmp_path, progress=False)
    checked = 0
    for sample in ShardDataset(tmp_path):
        (record,) = json.loads(sample["instances"]) or [None]
        if record and "params" in record:
            extent = sample["blur_intensity"] * config.blur.intensity_max_px
            assert extent.max() <= record["params"]["extent_px"] * 1.01 + 1e-3
            checked += 1
    assert checked >= 4
