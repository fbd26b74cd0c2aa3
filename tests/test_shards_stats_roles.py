"""``blurgen shards stats``: the paper's Table 1 rows by role (query, database, distractor),
against counts made with plain h5py and, with render's sharp images, counted by hand: Table 1
counts blurred images only, so the sharp images stand in a column of their own."""

from __future__ import annotations

import json
import shutil

import pytest
import release_fixtures as rf
import shard_fixtures as fx
import table1_fixtures as t1
from click.testing import CliRunner

from blurgen.cli.main import main
from blurgen.shards.stats import role_table


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    return rf.make_release_inputs(tmp_path_factory.mktemp("roles"))


def expected_roles(*folders):
    rows, levels = [], []
    for folder in folders:
        cols = rf.read_columns(folder, ["split", "role", "blur_level"])
        for split, role, level in zip(cols["split"], cols["role"], cols["blur_level"]):
            if role or split == "distractor":
                rows.append(role or "distractor")
                levels.append(level)
    return rf.level_counts(rows, levels)


def test_stats_prints_query_database_rows_after_the_splits(folders):
    retrieval, _ = folders
    result = CliRunner().invoke(main, ["shards", "stats", str(retrieval)])
    assert result.exit_code == 0, result.output
    split_part, role_part = result.stdout.split("\n\n")
    assert split_part.splitlines()[0].split()[0] == "split"
    title, *table = role_part.splitlines()
    assert title.startswith("blurred images by role (the paper's Table 1 rows)")
    lines = [line.split() for line in table]
    assert lines[0] == ["role", *map(str, range(1, 11)), "total", "sharp"]
    expected = expected_roles(retrieval)  # the fixture's images are all blurred (window_count = level)
    assert [row[0] for row in lines[1:]] == ["query", "database", "total"]
    for row in lines[1:3]:
        counter = expected[row[0]]
        assert [int(c) for c in row[1:]] == [counter.get(lv, 0) for lv in range(1, 11)] + [sum(counter.values()), 0]


def test_table1_rows_count_blurred_images_and_the_sharp_ones_apart(tmp_path):
    table = role_table(t1.write_job(tmp_path / "job"))
    assert table.splits == ("query", "database", "distractor")
    for row in table.splits:
        assert dict(table.counts[row]) == t1.BLURRED[row]
        assert table.samples[row] == sum(t1.BLURRED[row].values())
    assert table.sharp == t1.SHARP
    assert {lv: table.level_total(lv) for lv in table.levels if table.level_total(lv)} == t1.BLURRED_TOTAL_BY_LEVEL
    assert table.total == 8 and table.sharp_total == 4


def test_stats_prints_and_dumps_the_sharp_column(tmp_path):
    job = t1.write_job(tmp_path / "job")
    result = CliRunner().invoke(main, ["shards", "stats", str(job)])
    assert result.exit_code == 0, result.output
    split_part, role_part = result.stdout.split("\n\n")
    # the split rows count every image: test holds 3 sharp and 6 blurred images
    test_row = next(line.split() for line in split_part.splitlines() if line.startswith("test"))
    assert test_row[1] == "4" and test_row[-1] == "9"  # level 1: the 3 sharp images and 1 blurred
    rows = {line.split()[0]: line.split()[1:] for line in role_part.splitlines()[2:]}
    assert rows["query"] == ["1", "1", "0", "1", "0", "0", "0", "0", "0", "0", "3", "1"]
    assert rows["database"] == ["0", "2", "1", "0", "0", "0", "0", "0", "0", "0", "3", "2"]
    assert rows["distractor"] == ["1", "0", "0", "0", "1", "0", "0", "0", "0", "0", "2", "1"]
    assert rows["total"] == ["2", "3", "1", "1", "1", "0", "0", "0", "0", "0", "8", "4"]
    data = json.loads(CliRunner().invoke(main, ["shards", "stats", "--json", str(job)]).stdout)["by_role"]
    assert data["roles"]["query"] == {**{str(lv): 0 for lv in range(1, 11)}, "1": 1, "2": 1, "4": 1,
                                      "total": 3, "sharp": 1}
    assert data["total"]["total"] == 8 and data["total"]["sharp"] == 4


def test_role_table_counts_the_distractor_split_as_its_own_row(folders, tmp_path):
    retrieval, distractors = folders
    both = tmp_path / "both"
    both.mkdir()
    for folder in folders:
        for shard in folder.glob("*.h5"):
            shutil.copy(shard, both / f"{folder.name}-{shard.name}".replace("-", "_", 1))
    table = role_table(both)  # no manifest: the files are read
    expected = expected_roles(retrieval, distractors)
    assert table.splits == ("query", "database", "distractor")
    for row, counter in expected.items():
        assert dict(table.counts[row]) == dict(counter) and table.samples[row] == sum(counter.values())
        assert table.sharp[row] == 0


def test_stats_json_has_the_role_table_and_other_schemas_have_none(folders, tmp_path):
    data = json.loads(CliRunner().invoke(main, ["shards", "stats", "--json", str(folders[1])]).stdout)
    assert list(data["by_role"]["roles"]) == ["distractor"]
    assert data["by_role"]["total"]["total"] == 12 == data["total"]["total"]
    fx.write_shard(tmp_path / "plain", range(4))
    assert role_table(tmp_path / "plain") is None
    assert "by_role" not in json.loads(CliRunner().invoke(main, ["shards", "stats", "--json",
                                                                 str(tmp_path / "plain")]).stdout)
