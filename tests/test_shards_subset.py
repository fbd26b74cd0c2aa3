"""``blurgen shards subset``: the selections against brute-force counts with h5py, determinism
independent of the sharding, the provenance record, and the refusals."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections import Counter
from pathlib import Path

import h5py
import numpy as np
import pytest
import release_fixtures as rf
import shard_fixtures as fx
from click.testing import CliRunner

from blurgen.cli.main import main
from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset, verify_dir
from blurgen.shards.publish import publish
from blurgen.shards.publish_config import PublishConfig
from blurgen.shards.subset import Selection, parse_levels, subset


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return rf.make_release_inputs(tmp_path_factory.mktemp("subset"))[0]


def run(*args: str):
    return CliRunner().invoke(main, ["shards", "subset", *args])


def columns(folder: Path) -> dict[str, list]:
    return rf.read_columns(folder, ["sample_id", "split", "role", "blur_level", "trajectory_id"])


def test_a_per_level_database_keeps_exactly_those_images(source, tmp_path):
    result = run(str(source), "--out", str(tmp_path / "db3"), "--role", "database", "--levels", "3")
    assert result.exit_code == 0, result.output
    src, got = columns(source), columns(tmp_path / "db3")
    expected = sorted(sid for sid, role, lv in zip(src["sample_id"], src["role"], src["blur_level"])
                      if role == "database" and lv == 3)
    assert expected and sorted(got["sample_id"]) == expected
    assert verify_dir(tmp_path / "db3").ok


def test_role_distractor_selects_the_distractor_split_as_stats_counts_it(tmp_path):
    retrieval, distractors = rf.make_release_inputs(tmp_path / "in")
    both = tmp_path / "both"
    shutil.copytree(distractors, both)
    result = run(str(both), "--out", str(tmp_path / "d"), "--role", "distractor", "--role", "query")
    assert result.exit_code == 0, result.output
    src = columns(distractors)
    assert sorted(columns(tmp_path / "d")["sample_id"]) == sorted(src["sample_id"])  # all 12 distractors


def test_level_balanced_one_per_trajectory(source, tmp_path):
    out = tmp_path / "train"
    subset(source, out, Selection(splits=("train",), per_trajectory=1, balance_levels=True), progress=False)
    got = columns(out)
    src = columns(source)
    assert set(got["split"]) == {"train"}
    per_trajectory = Counter(got["trajectory_id"])
    assert max(per_trajectory.values()) == 1
    levels = Counter(got["blur_level"])
    assert len(set(levels.values())) == 1  # every level kept as often as the rarest
    # the greedy pick spreads the 6 trajectories over levels: more than one level survives
    assert len(levels) > 1
    train_levels = {lv for s, lv in zip(src["split"], src["blur_level"]) if s == "train"}
    assert set(levels) <= train_levels


def test_balance_levels_keeps_the_rarest_levels_count_of_each(source, tmp_path):
    subset(source, tmp_path / "bal", Selection(balance_levels=True), progress=False)
    src = Counter(columns(source)["blur_level"])
    assert Counter(columns(tmp_path / "bal")["blur_level"]) == {lv: min(src.values()) for lv in src}


def test_selection_depends_on_the_samples_not_on_the_sharding(tmp_path):
    plan = rf.retrieval_plan()
    a = rf.write_job(tmp_path / "a", plan, prefix="p", objects_manifest=None,
                     tasks={"train": 0, "val": 0, "test": 1}, num_tasks=2, dropped={})
    b = rf.write_job(tmp_path / "b", plan[::-1], prefix="p", objects_manifest=None,
                     tasks={"train": 2, "val": 1, "test": 0}, num_tasks=3, dropped={})
    chosen = []
    for folder in (a, b):
        out = tmp_path / f"{folder.name}-sub"
        subset(folder, out, Selection(max_samples=10, per_trajectory=2, seed=5), progress=False)
        chosen.append(sorted(columns(out)["sample_id"]))
    assert len(chosen[0]) == 10 and chosen[0] == chosen[1]
    subset(a, tmp_path / "other-seed", Selection(max_samples=10, per_trajectory=2, seed=6), progress=False)
    assert sorted(columns(tmp_path / "other-seed")["sample_id"]) != chosen[0]


def test_same_selection_same_bytes_and_the_record_points_at_the_source_samples(source, tmp_path):
    sel = Selection(max_samples=7, seed=3)
    record = subset(source, tmp_path / "x", sel, progress=False)
    subset(source, tmp_path / "y", sel, progress=False)
    fx.assert_same_shard_bytes(tmp_path / "x", tmp_path / "y")
    assert (tmp_path / "x" / "subset.json").read_bytes() == (tmp_path / "y" / "subset.json").read_bytes()
    assert json.loads((tmp_path / "x" / "subset.json").read_text()) == record
    assert record["selection"] == {"max_samples": 7, "seed": 3} and record["samples"] == 7
    # rebuild every new shard from the source ranges the record names, with plain h5py
    for new_file, origins in record["shards"].items():
        with h5py.File(tmp_path / "x" / new_file, "r") as new:
            rows = 0
            for origin in origins:
                assert origin["sha256"] == hashlib.sha256((source / origin["file"]).read_bytes()).hexdigest()
                with h5py.File(source / origin["file"], "r") as old:
                    for start, stop in origin["ranges"]:
                        for name in new:
                            assert np.array_equal(new[name][rows:rows + stop - start], old[name][start:stop]), name
                        rows += stop - start
            assert rows == new.attrs["num_samples"]
    assert len(ShardDataset(tmp_path / "x")) == 7


def test_a_subset_publishes_and_its_card_names_the_selection(source, tmp_path):
    subset(source, tmp_path / "small", Selection(roles=("query",)), progress=False)
    publish([tmp_path / "small"], tmp_path / "rel", PublishConfig(license="CC0-1.0"), progress=False)
    card = (tmp_path / "rel" / "README.md").read_text()
    assert 'cut by `blurgen shards subset` with the selection {"roles": ["query"], "seed": 0}' in card


def test_a_damaged_source_is_refused_by_name_and_nothing_is_written(source, tmp_path):
    damaged = Path(shutil.copytree(source, tmp_path / "damaged"))
    shard = damaged / "test-00001-of-00002.h5"
    fx.flip_byte(shard, fx.chunk_byte_offset(shard, "image", 1))
    out = tmp_path / "out"
    # sample 1 is a query image, which a database subset does not take: the whole source is verified
    # all the same, before any sample is read
    result = run(str(damaged), "--out", str(out), "--role", "database")
    assert result.exit_code == 2, result.output
    (line,) = result.stderr.strip().splitlines()
    assert "fails verification, nothing written" in line and "test-00001-of-00002.h5: sha256 differs" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["damaged"]  # no output, no hidden staging folder


def test_parse_levels():
    assert parse_levels("1-6") == (1, 2, 3, 4, 5, 6)
    assert parse_levels("3") == (3,) and parse_levels("1,3-4,3") == (1, 3, 4)
    with pytest.raises(BlurgenError, match="like 1-6"):
        parse_levels("6-1")


def test_bad_selections_are_one_line_errors_and_leave_nothing(source, tmp_path):
    flow = rf.write_simple_job(tmp_path / "flowpairs", "blurgen.flowpairs/1", rf.flowpairs_sample,
                               {"train": range(4)})
    out = tmp_path / "out"
    cases = [
        ((str(flow), "--levels", "1-3"), "needs the field 'blur_level'"),
        ((str(source), "--per-trajectory", "0"), "at least 1"),
        ((str(source), "--split", "nope"), "no such split"),
        ((str(source), "--role", "query", "--split", "train"), "keeps no sample"),
        ((str(source), "--levels", "x"), "like 1-6"),
    ]
    for args, words in cases:
        result = run(*args, "--out", str(out))
        assert result.exit_code == 2, (args, result.output)
        assert words in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flowpairs"]
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    result = run(str(source), "--out", str(out))
    assert result.exit_code == 2 and "a subset is never written over another" in result.stderr
    assert [p.name for p in out.iterdir()] == ["mine.txt"]
