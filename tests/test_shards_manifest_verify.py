"""manifest.json (totals, concurrency, rebuild), verify (corruption, missing files), stats table."""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp

import pytest
import shard_fixtures as fx

from blurgen.errors import ShardError
from blurgen.shards import (
    format_level_table,
    level_table,
    read_manifest,
    rebuild_manifest,
    shard_entry,
    shard_is_complete,
    verify_dir,
    verify_shard,
)
from blurgen.shards.manifest import MANIFEST_NAME, build_manifest


@pytest.fixture
def folder(tmp_path):
    """train: ids 0-11 in two shards, val: 12-15, test: 16-19 (blur_level = id % 10 + 1)."""
    fx.write_shard(tmp_path, range(0, 7), task_index=0, num_tasks=2)
    fx.write_shard(tmp_path, range(7, 12), task_index=1, num_tasks=2)
    fx.write_shard(tmp_path, range(12, 16), split="val")
    fx.write_shard(tmp_path, range(16, 20), split="test")
    return tmp_path


def test_manifest_entries_and_totals(folder):
    m = read_manifest(folder)
    assert m["format"] == "blurgen.manifest/1"
    files = [e["file"] for e in m["shards"]]
    assert files == sorted(files) == ["test-00000-of-00001.h5", "train-00000-of-00002.h5",
                                      "train-00001-of-00002.h5", "val-00000-of-00001.h5"]
    train0 = m["shards"][1]
    assert train0["samples"] == 7 and train0["split"] == "train" and train0["num_tasks"] == 2
    assert train0["blur_levels"] == {str(level): 1 for level in range(1, 8)}
    for e in m["shards"]:
        data = (folder / e["file"]).read_bytes()
        assert e["bytes"] == len(data) and e["sha256"] == hashlib.sha256(data).hexdigest()
    t = m["totals"]
    assert (t["shards"], t["samples"]) == (4, 20)
    assert t["bytes"] == sum((folder / f).stat().st_size for f in files)
    assert t["per_split"] == {"test": 4, "train": 12, "val": 4}
    # ids 0..19, level = id % 10 + 1: every level twice
    assert t["blur_level_histogram"] == {str(level): 2 for level in range(1, 11)}


def test_rebuild_equals_incremental(folder):
    incremental = (folder / MANIFEST_NAME).read_bytes()
    (folder / MANIFEST_NAME).unlink()
    rebuilt = rebuild_manifest(folder)
    assert (folder / MANIFEST_NAME).read_bytes() == incremental
    assert rebuilt == json.loads(incremental)
    assert shard_entry(folder / "val-00000-of-00001.h5") == rebuilt["shards"][3]


def test_concurrent_updates_keep_every_entry(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=fx.add_entries, args=(str(tmp_path), w, 15)) for w in range(4)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert [p.exitcode for p in procs] == [0, 0, 0, 0]
    m = read_manifest(tmp_path)
    assert len(m["shards"]) == 60
    assert m["totals"]["samples"] == 15 * (1 + 2 + 3 + 4)
    assert m["totals"]["blur_level_histogram"] == {"2": 150}
    assert not list(tmp_path.glob(".manifest.json.*.tmp"))


def test_a_killed_writers_temporary_manifest_goes_with_the_next_update(tmp_path):
    """A task killed between writing the new manifest and renaming it (a lost Dask worker)
    leaves a hidden temporary manifest; the next update, under the lock, removes it and leaves
    everything else."""
    from blurgen.atomic import temporary_name

    fx.write_shard(tmp_path, range(0, 3), task_index=0, num_tasks=2)
    leftover = temporary_name(tmp_path / MANIFEST_NAME)
    leftover.write_text('{"half": ')
    other = tmp_path / ".notes.tmp"
    other.write_text("not blurgen's")
    fx.write_shard(tmp_path, range(3, 5), task_index=1, num_tasks=2)
    assert not leftover.exists() and other.exists()
    assert [e["file"] for e in read_manifest(tmp_path)["shards"]] == ["train-00000-of-00002.h5", "train-00001-of-00002.h5"]
    leftover.write_text("again")
    rebuild_manifest(tmp_path)
    assert not leftover.exists()


def test_unreadable_manifest(tmp_path):
    (tmp_path / MANIFEST_NAME).write_text("{broken")
    with pytest.raises(ShardError, match="not valid JSON.*blurgen shards index"):
        read_manifest(tmp_path)
    (tmp_path / MANIFEST_NAME).write_text(json.dumps({"format": "other/1", "shards": []}))
    with pytest.raises(ShardError, match="not a blurgen.manifest/1 manifest"):
        read_manifest(tmp_path)


def test_verify_sound_folder(folder):
    report = verify_dir(folder)
    assert report.ok and report.problems() == []
    assert (report.shards, report.samples) == (4, 20)


def test_verify_catches_a_flipped_byte_in_chunk_data(folder):
    path = folder / "train-00001-of-00002.h5"
    fx.flip_byte(path, fx.chunk_byte_offset(path, "image", 2))
    report = verify_dir(folder)
    assert not report.ok and list(report.bad) == ["train-00001-of-00002.h5"]
    problems = report.bad["train-00001-of-00002.h5"]
    assert any("sha256 differs" in p for p in problems)
    assert any("dataset 'image': 1 corrupt chunk(s)" in p and "sample 2" in p for p in problems)
    # without the manifest, the chunk checksums alone still find it
    assert verify_shard(path, None) == [p for p in problems if "sha256" not in p]


def test_verify_catches_a_flipped_byte_only_sha256_sees(folder):
    path = folder / "val-00000-of-00001.h5"
    data = path.read_bytes()
    offset = data.index(fx.CONFIG["marker"].encode()) + 10  # inside the config attribute's text
    fx.flip_byte(path, offset)
    assert verify_shard(path, None) == []  # HDF5 has no checksum over attribute values
    report = verify_dir(folder)
    assert report.bad == {"val-00000-of-00001.h5": [
        "sha256 differs from the manifest: the file changed after it was written"]}


def test_verify_reports_missing_unlisted_and_mismatched(folder):
    (folder / "test-00000-of-00001.h5").unlink()
    stray = folder / "extra-00000-of-00001.h5"
    stray.write_bytes((folder / "val-00000-of-00001.h5").read_bytes())
    report = verify_dir(folder)
    assert report.missing == ["test-00000-of-00001.h5"]
    assert report.unlisted == ["extra-00000-of-00001.h5"]
    # a copy under another name disagrees with its own attributes
    assert report.bad == {"extra-00000-of-00001.h5": ["its attributes say it is val-00000-of-00001.h5"]}
    lines = report.problems()
    assert "test-00000-of-00001.h5: listed in manifest.json but the file is missing" in lines


def test_verify_without_manifest_and_missing_folder(folder, tmp_path_factory):
    (folder / MANIFEST_NAME).unlink()
    report = verify_dir(folder)
    assert not report.bad and report.manifest_problems == [
        f"missing; create it with: blurgen shards index {folder}"]
    with pytest.raises(ShardError, match="shard folder not found"):
        verify_dir(folder / "nope")
    with pytest.raises(ShardError, match="no shards"):
        verify_dir(tmp_path_factory.mktemp("empty"))


def test_shard_is_complete(folder):
    assert shard_is_complete(folder, "train-00000-of-00002.h5")
    assert not shard_is_complete(folder, "train-00005-of-00006.h5")
    path = folder / "train-00001-of-00002.h5"
    fx.flip_byte(path, fx.chunk_byte_offset(path, "alpha", 0))
    assert not shard_is_complete(folder, path.name)


def test_shard_finished_but_missing_from_manifest_counts_and_is_listed(folder):
    # the task died between the rename and the manifest update
    m = read_manifest(folder)
    kept = [e for e in m["shards"] if e["file"] != "val-00000-of-00001.h5"]
    (folder / MANIFEST_NAME).write_text(json.dumps(build_manifest(kept)))
    assert shard_is_complete(folder, "val-00000-of-00001.h5")
    assert read_manifest(folder) == m


def test_level_table(folder):
    table = level_table(read_manifest(folder))
    assert table.splits == ("train", "val", "test") and table.levels == tuple(range(1, 11))
    assert dict(table.counts["train"]) == {**{lv: 1 for lv in range(1, 11)}, 1: 2, 2: 2}
    assert table.samples == {"train": 12, "val": 4, "test": 4} and table.total == 20
    assert [table.level_total(lv) for lv in range(1, 11)] == [2] * 10
    text = format_level_table(table).splitlines()
    assert text[0].split() == ["split", *map(str, range(1, 11)), "total"]
    assert text[1].split() == ["train", "2", "2", "1", "1", "1", "1", "1", "1", "1", "1", "12"]
    assert text[-1].split() == ["total", *["2"] * 10, "20"]
    d = table.to_dict()
    assert d["splits"]["val"] == {**{str(lv): 0 for lv in range(1, 11)}, "3": 1, "4": 1, "5": 1, "6": 1, "total": 4}


def test_level_table_without_levels():
    manifest = build_manifest([
        {"file": "a.h5", "split": "train", "samples": 5, "bytes": 1},
        {"file": "b.h5", "split": "val", "samples": 2, "bytes": 1}])
    table = level_table(manifest)
    assert table.levels == () and table.samples == {"train": 5, "val": 2}
    assert format_level_table(table).splitlines() == ["split  total", "train      5", "val        2",
                                                      "total      7"]
