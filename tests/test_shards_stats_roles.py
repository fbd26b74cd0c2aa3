"""``blurgen shards stats``: the paper's Table 1 rows by role (query, database, distractor),
against counts made with plain h5py."""

from __future__ import annotations

import json
import shutil

import pytest
import release_fixtures as rf
import shard_fixtures as fx
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
    lines = [line.split() for line in role_part.splitlines()]
    assert lines[0] == ["role", *map(str, range(1, 11)), "total"]
    expected = expected_roles(retrieval)
    assert [row[0] for row in lines[1:]] == ["query", "database", "total"]
    for row in lines[1:3]:
        counter = expected[row[0]]
        assert [int(c) for c in row[1:]] == [counter.get(lv, 0) for lv in range(1, 11)] + [sum(counter.values())]


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


def test_stats_json_has_the_role_table_and_other_schemas_have_none(folders, tmp_path):
    data = json.loads(CliRunner().invoke(main, ["shards", "stats", "--json", str(folders[1])]).stdout)
    assert list(data["by_role"]["roles"]) == ["distractor"]
    assert data["by_role"]["total"]["total"] == 12 == data["total"]["total"]
    fx.write_shard(tmp_path / "plain", range(4))
    assert role_table(tmp_path / "plain") is None
    assert "by_role" not in json.loads(CliRunner().invoke(main, ["shards", "stats", "--json",
                                                                 str(tmp_path / "plain")]).stdout)
