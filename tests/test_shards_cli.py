"""``blurgen shards info|stats|verify|index`` through click's test runner."""

from __future__ import annotations

import json

import pytest
import shard_fixtures as fx
from click.testing import CliRunner

from blurgen.cli.main import main
from blurgen.shards.manifest import MANIFEST_NAME


@pytest.fixture
def folder(tmp_path):
    fx.write_shard(tmp_path, range(0, 6), task_index=0, num_tasks=2, stats={"dropped": {"coverage": 2}})
    fx.write_shard(tmp_path, range(6, 9), task_index=1, num_tasks=2)
    fx.write_shard(tmp_path, range(9, 11), split="val")
    return tmp_path


def run(*args: str):
    return CliRunner().invoke(main, ["shards", *args])


def test_info(folder):
    result = run("info", str(folder))
    assert result.exit_code == 0, result.output
    out = result.stdout
    assert "schema:    blurgen.test/1" in out
    assert "shards:    3 (" in out
    assert "samples:   11 (train 9, val 2)" in out
    assert "seed 7, 2 tasks" in out
    lines = [line.split() for line in out.splitlines()]
    assert ["image", "24x32x3", "uint8", "shuffle+gzip(4)+fletcher32", "1", "sample"] in lines
    assert ["alpha", "24x32", "float32", "shuffle+gzip(4)+fletcher32", "1", "sample"] in lines
    assert ["sample_id", "scalar", "str", "shuffle+gzip(4)+fletcher32", "6", "samples"] in lines
    assert 'stats of train-00000-of-00002.h5: {"dropped": {"coverage": 2}}' in out
    assert "render: width=32, height=24, spp=4" in out


def test_info_without_manifest(folder):
    (folder / MANIFEST_NAME).unlink()
    result = run("info", str(folder))
    assert result.exit_code == 0
    assert "no manifest.json" in result.stdout and "samples:   11 (train 9, val 2)" in result.stdout


def test_stats_text_and_json(folder):
    result = run("stats", str(folder))
    assert result.exit_code == 0
    rows = [line.split() for line in result.stdout.splitlines()]
    assert rows[0] == ["split", *map(str, range(1, 11)), "total"]
    assert rows[1] == ["train", "1", "1", "1", "1", "1", "1", "1", "1", "1", "0", "9"]
    assert rows[2] == ["val", "1", "0", "0", "0", "0", "0", "0", "0", "0", "1", "2"]  # ids 9, 10: levels 10, 1
    assert rows[3][0] == "total" and rows[3][-1] == "11"
    data = json.loads(run("stats", "--json", str(folder)).stdout)
    assert data["levels"] == list(range(1, 11))
    assert data["total"]["total"] == 11 and data["total"]["1"] == 2
    assert data["splits"]["val"]["10"] == 1


def test_verify_ok_and_bad(folder):
    result = run("verify", str(folder))
    assert result.exit_code == 0
    assert result.stdout.startswith("OK: 3 shards, 11 samples")
    path = folder / "train-00001-of-00002.h5"
    fx.flip_byte(path, fx.chunk_byte_offset(path, "image", 1))
    result = run("verify", str(folder))
    assert result.exit_code == 1
    bad = [line for line in result.stdout.splitlines() if line.startswith("BAD ")]
    assert bad and all(line.startswith("BAD train-00001-of-00002.h5: ") for line in bad)
    assert any("dataset 'image'" in line and "sample 1" in line for line in bad)
    assert result.stdout.splitlines()[-1].startswith("FAILED: 2 problem(s), 1 of 3 shards")


def test_user_errors_exit_2_with_one_line(folder):
    for command in ("verify", "info", "stats", "index"):
        result = run(command, str(folder / "missing"))
        assert result.exit_code == 2, command
        assert result.output.strip().splitlines() == [f"blurgen: error: shard folder not found: {folder / 'missing'}"]
    (folder / MANIFEST_NAME).write_text("{")
    result = run("stats", str(folder))
    assert result.exit_code == 2 and "blurgen shards index" in result.output


def test_index_rebuilds_the_manifest(folder):
    before = (folder / MANIFEST_NAME).read_bytes()
    (folder / MANIFEST_NAME).unlink()
    result = run("index", str(folder))
    assert result.exit_code == 0
    assert "3 shards, 11 samples" in result.stdout
    assert (folder / MANIFEST_NAME).read_bytes() == before
