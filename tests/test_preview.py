"""Contact sheets and flow colours: sizes, sample choice and colours are what they should be."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import shard_fixtures  # noqa: F401 - declares the blurgen.test/1 schema these shards use

from blurgen.errors import ShardError
from blurgen.shards import ShardDataset, ShardWriter
from blurgen.viz.flow_colors import color_wheel, flow_to_rgb
from blurgen.viz.preview import pick_samples, preview_shards


def write_shard(folder, levels, *, mask=False, flow=False, size=(48, 64)):
    rng = np.random.default_rng(0)
    with ShardWriter(folder, schema="blurgen.test/1", split="train", task_index=0, num_tasks=1, seed=0,
                     config_json="{}") as writer:
        for i, level in enumerate(levels):
            sample = {"image": rng.integers(0, 256, (*size, 3), dtype=np.uint8),
                      "blur_level": np.int8(level), "blur_severity": np.float32(level / 10 - 0.05),
                      "bbox": np.array([4, 5, 40, 30], np.int32), "sample_id": f"test-{i:04d}"}
            if mask:
                sample["blur_mask"] = np.zeros(size, bool)
                sample["blur_intensity"] = np.full(size, 0.5, np.float32)
            if flow:
                sample["flow_fwd"] = np.dstack([np.full(size, 2.0, np.float32), np.zeros(size, np.float32)])
            writer.add(sample)
    return folder


def test_preview_png_has_the_size_of_its_grid(tmp_path):
    write_shard(tmp_path / "s", [1, 2, 3, 4, 5], mask=True)
    out = preview_shards(tmp_path / "s", tmp_path / "sheet.png", count=4, cols=2, tile_width=120)
    sheet = cv2.imread(str(out))
    # a cell: image 120x90 (64x48 scaled), mask overlay and intensity beside it, 2 px apart
    cell_w, cell_h = 3 * 120 + 2 * 2, 90
    assert sheet.shape == (2 * (cell_h + 4) + 4, 2 * (cell_w + 4) + 4, 3)


def test_preview_draws_flow_beside_the_image(tmp_path):
    write_shard(tmp_path / "s", [1, 2], flow=True)
    sheet = cv2.imread(str(preview_shards(tmp_path / "s", tmp_path / "p.png", count=2, cols=1,
                                          tile_width=64)))
    assert sheet.shape == (2 * (48 + 4) + 4, (64 * 2 + 2) + 8, 3)
    flow_tile = cv2.cvtColor(sheet[4 + 30:4 + 48, 4 + 66 + 20:4 + 130], cv2.COLOR_BGR2RGB)
    # a uniform rightward flow at full magnitude is the wheel's first colour, pure red
    assert np.abs(flow_tile.reshape(-1, 3).astype(int) - [255, 0, 0]).max() <= 1


def test_samples_are_spread_over_blur_levels(tmp_path):
    levels = [1] * 20 + [2] * 3 + [6] * 2
    dataset = ShardDataset(write_shard(tmp_path / "s", levels))
    picked = pick_samples(dataset, 3)
    assert sorted(levels[i] for i in picked) == [1, 2, 6]
    assert pick_samples(dataset, 100) == list(range(len(levels)))


def test_preview_refuses_empty_input(tmp_path):
    write_shard(tmp_path / "s", [1])
    with pytest.raises(ShardError):
        preview_shards(tmp_path / "s", tmp_path / "p.png", count=0)


def test_flow_colours_follow_the_middlebury_wheel():
    wheel = color_wheel()
    assert wheel.shape == (55, 3)
    assert np.allclose(wheel[0], [1, 0, 0]) and np.allclose(wheel[15], [1, 1, 0])   # red, yellow
    assert np.allclose(wheel[21], [0, 1, 0]) and np.allclose(wheel[25], [0, 1, 1])  # green, cyan
    assert np.allclose(wheel[36], [0, 0, 1]) and np.allclose(wheel[49], [1, 0, 1])  # blue, magenta
    flow = np.array([[[0.0, 0.0], [3.0, 0.0], [-3.0, 0.0], [0.0, 1.5], [np.nan, 0.0]]])
    rgb = flow_to_rgb(flow, max_magnitude=3.0).astype(int)
    assert rgb[0, 0].tolist() == [255, 255, 255]      # no motion: white
    assert rgb[0, 1].tolist() == [255, 0, 0]          # right: red at full saturation
    assert rgb[0, 2, 2] == 255 and rgb[0, 2, 0] == 0  # left: the cyan-blue side
    assert rgb[0, 3].tolist() == [255, 242, 128]      # down, half magnitude: half-saturated yellow
    assert rgb[0, 4].tolist() == [0, 0, 0]            # invalid: black
    longer = flow_to_rgb(np.array([[[6.0, 0.0]]]), max_magnitude=3.0)
    assert longer[0, 0].tolist() == [191, 0, 0]       # beyond the maximum: darkened


def test_preview_command_writes_the_sheet(tmp_path):
    from click.testing import CliRunner

    from blurgen.cli import main

    write_shard(tmp_path / "s", [1, 3])
    result = CliRunner().invoke(main, ["shards", "preview", str(tmp_path / "s"), "--out",
                                       str(tmp_path / "sheet.png"), "--count", "2", "--cols", "2",
                                       "--tile-width", "64"])
    assert result.exit_code == 0, result.output
    assert cv2.imread(str(tmp_path / "sheet.png")).shape == (48 + 8, 2 * (64 + 4) + 4, 3)
    missing = CliRunner().invoke(main, ["shards", "preview", str(tmp_path / "none"), "--out", "x.png"])
    assert missing.exit_code == 2 and "shard folder not found" in missing.output
