"""The job skeleton every generator runs in (blurgen.job), driven by a small generator made here."""

from __future__ import annotations

import dataclasses
import json
from typing import Sequence

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.config.common import OutputSection, TasksSection
from blurgen.config.schema import option, run_only_keys, section
from blurgen.errors import BlurgenError
from blurgen.job import Generator, TaskRun, Wording, run_job
from blurgen.shards import ShardDataset, read_manifest
from shard_fixtures import TEST_SCHEMA, sample


@section
class ToyConfig:
    seed: int = option(7, "seed")
    drop_every: int = option(3, "items whose id is a multiple of this are dropped")
    output: OutputSection = option(doc="shard writing", default_factory=lambda: OutputSection(preview=False))
    farm: TasksSection = option(doc="tasks", default_factory=TasksSection)


@dataclasses.dataclass(frozen=True)
class ToyItem:
    item_id: int
    split: str


@dataclasses.dataclass(frozen=True)
class ToyGenerator(Generator):
    """Ten items, ids 0..9: 0..6 train, 7..9 val; ids divisible by ``drop_every`` are dropped."""

    config: ToyConfig
    made: list = dataclasses.field(default_factory=list)  # the item ids make() was given, per call
    fail_after: int | None = None                         # raise after writing this many samples
    schema: str = TEST_SCHEMA.name
    name: str = "toy"
    wording: Wording = Wording(samples="toys", sources="boxes", unit="toy", counts={"dropped": "dropped toys"},
                               job_counts={"left_out": "left out by the plan"})

    @property
    def items(self) -> Sequence[ToyItem]:
        return [ToyItem(i, "train" if i < 7 else "val") for i in range(10)]

    def job_counts(self) -> dict[str, dict[str, int]]:
        return {"left_out": {"broken": 2}}

    def make(self, items: Sequence[ToyItem], task: TaskRun) -> None:
        self.made.append([item.item_id for item in items])
        task.source_done()
        for item in items:
            if item.item_id % self.config.drop_every == 0:
                task.count("dropped", "multiple")
            else:
                task.write(item.split, sample(item.item_id))
                if self.fail_after is not None and task.summary.samples >= self.fail_after:
                    raise RuntimeError("boom")
            task.advance()


def test_tasks_write_their_blocks_with_stats_and_a_summary(tmp_path):
    summary = run_job(ToyGenerator(ToyConfig()), tmp_path, num_tasks=3, progress=False)
    # blocks of 10 items over 3 tasks: [0,1,2] [3,4,5] [6,7,8,9]; drops: 0, 3, 6, 9
    assert [t.samples for t in summary.tasks] == [2, 2, 2]
    assert [t.counts["dropped"] for t in summary.tasks] == [{"multiple": 1}, {"multiple": 1}, {"multiple": 2}]
    kept = sorted(s["sample_id"] for s in ShardDataset(tmp_path))
    assert kept == [f"s-{i:05d}" for i in (1, 2, 4, 5, 7, 8)]
    shards = {e["file"]: e["samples"] for e in read_manifest(tmp_path)["shards"]}
    assert shards == {"train-00000-of-00003.h5": 2, "train-00001-of-00003.h5": 2,
                      "train-00002-of-00003.h5": 0, "val-00002-of-00003.h5": 2}
    with h5py.File(tmp_path / "val-00002-of-00003.h5") as f:
        assert json.loads(f.attrs["stats"]) == {"sources": 1, "samples": 2, "dropped": {"multiple": 2},
                                                "left_out": {"broken": 2}, "details": []}
        assert json.loads(f.attrs["config"])["farm"]["num_tasks"] == 3  # --num-tasks is stored
    assert summary.describe().splitlines() == [
        f"6 toys from 3 boxes in 3 task(s) -> {tmp_path}", "dropped toys: multiple 4",
        "left out by the plan: broken 2"]


def test_a_rerun_skips_complete_tasks_and_runs_the_rest(tmp_path):
    run_job(ToyGenerator(ToyConfig()), tmp_path, task_index=1, num_tasks=3, progress=False)
    again = ToyGenerator(ToyConfig())
    summary = run_job(again, tmp_path, num_tasks=3, progress=False)
    assert [t.skipped_complete for t in summary.tasks] == [False, True, False]
    assert again.made == [[0, 1, 2], [6, 7, 8, 9]]
    assert "1 task(s) already complete, skipped" in summary.describe()


def test_run_only_settings_may_change_on_a_rerun_others_are_refused(tmp_path):
    run_job(ToyGenerator(ToyConfig()), tmp_path, progress=False)
    assert run_only_keys(ToyConfig) == [("output", "preview"), ("farm", "backend"), ("farm", "scheduler"),
                                        ("farm", "resources")]
    previewed = ToyConfig(output=OutputSection(preview=True))
    summary = run_job(ToyGenerator(previewed), tmp_path, progress=False)  # how it runs: accepted
    assert summary.tasks[0].skipped_complete
    with pytest.raises(BlurgenError, match="holds shards of another job"):
        run_job(ToyGenerator(ToyConfig(drop_every=4)), tmp_path, progress=False)  # what it makes: refused


def test_a_failing_task_leaves_nothing_half_written(tmp_path):
    with pytest.raises(RuntimeError, match="boom"):
        run_job(ToyGenerator(ToyConfig(), fail_after=3), tmp_path, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".manifest")) == []


def test_a_sample_the_shard_refuses_is_named(tmp_path):
    @dataclasses.dataclass(frozen=True)
    class Mixed(ToyGenerator):
        def make(self, items, task):
            task.write("train", sample(1))
            bad = sample(2)
            bad["image"] = np.zeros((5, 5, 3), np.uint8)  # another size than the shard's first sample
            task.write("train", bad)

    with pytest.raises(BlurgenError, match="^s-00002: "):
        run_job(Mixed(ToyConfig()), tmp_path, progress=False)


@pytest.mark.parametrize("command", [["render"], ["composite"], ["flowpairs", "video"], ["flowpairs", "synth"],
                                     ["assets", "demo"]])
def test_every_generator_command_needs_out_except_to_print_its_config(command):
    missing = CliRunner().invoke(main, command)
    assert missing.exit_code == 2 and "Missing option '--out'" in missing.output
    printed = CliRunner().invoke(main, [*command, "--print-config"])
    assert printed.exit_code == 0 and "seed:" in printed.output
