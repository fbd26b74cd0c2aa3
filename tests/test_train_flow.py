"""``blurgen train flow`` / ``evaluate flow`` end to end on tiny real shards: learning, determinism,
resuming after kill -9, two gloo ranks, a re-scorable report (checked against its own saved
flows with plain numpy), render shards with exact flow, and one-line refusals."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.config import resolve_config
from blurgen.flowpairs.config import FlowpairsConfig
from blurgen.flowpairs.pipeline import flowpairs_dataset
from blurgen.rng import seeded_torch
from blurgen.shards import ShardDataset
from blurgen.train.checkpoint import load_checkpoint, save_checkpoint
from blurgen.train.data import augment_generator
from blurgen.train.distributed import DistContext
from blurgen.train.flow import FlowTask
from blurgen.train.flow_config import KIND, FlowConfig
from blurgen.train.flow_eval import evaluate_flow
from blurgen.train.loop import train
from test_train_flow_parts import one_thread  # noqa: F401  (autouse: the tiny networks on one thread)

CPU = DistContext(torch.device("cpu"))

GOLDEN = Path(__file__).parent / "golden"
# a two-level network a few thousand weights large; 40x30 pairs are padded to 40x32 (stride 4)
TINY = ["model.levels=2", "model.widths=[6, 8]", "model.dense_widths=[8, 6]", "model.search_range=2",
        "model.context_widths=[6, 6, 6, 6, 6, 6]", "model.stn_width=4", "loss.level_weights=[0.005, 0.01]",
        "train.batch_size=2", "train.workers=0", "train.log_every=1", "train.lr=0.003"]


def tiny(*sets: str) -> FlowConfig:
    return resolve_config(FlowConfig, KIND, preset="demo", overrides=[*TINY, *sets])


@pytest.fixture(scope="module")
def pairs(tmp_path_factory) -> Path:
    """14 procedural scenes of 40x30 with exact flow, split by scene into train / val / test."""
    out = tmp_path_factory.mktemp("flowpairs") / "data"
    config = resolve_config(FlowpairsConfig, "flowpairs", overrides={
        "mode": "synth", "split": {"val": 0.15, "test": 0.15}, "output": {"preview": False},
        "synth": {"scenes": 14, "size": [40, 30], "scene_displacement": 5}})
    flowpairs_dataset(config, out, progress=False)
    return out


@pytest.fixture(scope="module")
def run(pairs, tmp_path_factory) -> Path:
    """One epoch of the tiny network: the model the evaluation tests score."""
    folder = tmp_path_factory.mktemp("run") / "run"
    train(FlowTask(tiny("train.epochs=1"), pairs), folder, CPU, progress=False)
    return folder


def first_batch_loss(task: FlowTask, model: torch.nn.Module) -> float:
    batch = next(task.batches(0, 0, CPU))
    rng = augment_generator(task.config.seed, 0, 0, CPU.device)  # what the loop gives step 0
    with torch.no_grad():
        return float(task.loss(model, batch, CPU, rng)[0])


@pytest.mark.slow  # trains twice for two epochs' worth of steps (about 15 s on a busy machine)
def test_two_epochs_lower_the_loss_and_validate_each_epoch(pairs, tmp_path):
    task = FlowTask(tiny("train.epochs=2"), pairs)
    with seeded_torch(task.config.seed):
        initial = task.build_model()
    before = first_batch_loss(task, initial)
    result = train(task, tmp_path / "run", CPU, progress=False)
    trained = task.build_model()
    trained.load_state_dict(load_checkpoint(result.checkpoint, "flow")["model"])
    assert first_batch_loss(task, trained) < 0.9 * before  # the same batch, the same mirror draws
    assert np.isfinite(result.metrics["epe_min"])  # validated on the val split
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in records if r["kind"] == "epoch"] == [1, 2]
    assert {"epe_level_1", "epe_level_2", "loss"} <= set(records[0])
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "validation.png").is_file()


@pytest.mark.slow  # three runs, one with worker processes
def test_same_config_data_and_seed_give_the_same_weights_and_metrics_whatever_the_workers(pairs, tmp_path):
    runs = [train(FlowTask(tiny("train.epochs=1", f"train.workers={workers}"), pairs), tmp_path / name, CPU,
                  progress=False) for name, workers in (("a", 2), ("b", 0))]
    assert runs[0].metrics == runs[1].metrics
    a, b = (load_checkpoint(r.checkpoint, "flow")["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(FlowTask(tiny("train.epochs=1", "seed=5"), pairs), tmp_path / "c", CPU, progress=False)
    assert other.metrics != runs[0].metrics


# A child process that trains and says "batch <epoch> <step>" before each batch, so the test can
# kill it at a known point (waiting on its output, not on time).
CHILD = """
import json, sys
from pathlib import Path
import torch
from blurgen.config import resolve_config
from blurgen.train.distributed import DistContext
from blurgen.train.flow import FlowTask
from blurgen.train.flow_config import KIND, FlowConfig
from blurgen.train.loop import train

class Announced(FlowTask):
    def batches(self, epoch, start_step, dist):
        for step, batch in enumerate(FlowTask.batches(self, epoch, start_step, dist), start=start_step):
            print(f"batch {epoch} {step}", flush=True)
            yield batch

run, data, sets = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
config = resolve_config(FlowConfig, KIND, preset="demo", overrides=sets)
train(Announced(config, Path(data)), run, DistContext(torch.device("cpu")), resume="--resume" in sys.argv,
      progress=False)
"""
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.mark.slow  # three child processes with torch
def test_a_run_killed_with_sigkill_and_resumed_ends_like_an_uninterrupted_one(pairs, tmp_path):
    sets = json.dumps([*TINY, "train.epochs=2", "train.checkpoint_every=2"])
    whole = subprocess.run([sys.executable, "-c", CHILD, str(tmp_path / "whole"), str(pairs), sets],
                           capture_output=True, text=True, env=ENV)
    assert whole.returncode == 0, whole.stderr[-2000:]
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(killed), str(pairs), sets], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    for line in proc.stdout:  # epoch 1, step 2 is asked for after a checkpoint in epoch 1
        if line.strip() == "batch 1 2":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(killed / "checkpoints" / "last.pt", "flow")
    assert state["epoch"] == 1 and 1 <= state["step"] <= 2
    resumed = subprocess.run([sys.executable, "-c", CHILD, str(killed), str(pairs), sets, "--resume"],
                             capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert resumed.stdout.splitlines()[0] == f"batch 1 {state['step']}"  # the batch after the checkpoint
    final = load_checkpoint(killed / "checkpoints" / "final.pt", "flow")
    reference = load_checkpoint(tmp_path / "whole" / "checkpoints" / "final.pt", "flow")
    assert final["metrics"] == reference["metrics"]
    assert all(torch.equal(final["model"][k], reference["model"][k]) for k in reference["model"])


@pytest.mark.slow  # torchrun starts two ranks
def test_two_gloo_ranks_run_the_flow_task(pairs, tmp_path):
    args = [a for s in [*TINY, "train.epochs=1", "train.batch_size=1"] for a in ("--set", s)]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "blurgen", "train", "flow", "--data", str(pairs), "--out", str(tmp_path / "ddp"),
                             "--device", "cpu", *args], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("model:") == 1  # rank 0 alone reports
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "final.pt", "flow")
    train_size = len(ShardDataset(sorted(str(p) for p in pairs.glob("train-*.h5")), fields=()))
    assert state["global_step"] == train_size // 2  # each rank takes every other sample, one per step


def plain_epe(pred: np.ndarray, gt: np.ndarray, valid: np.ndarray) -> float:
    return float(np.sqrt(((pred - gt) ** 2).sum(axis=-1))[valid].mean())


def test_the_report_is_rescorable_from_its_saved_flows(run, pairs, tmp_path):
    report = evaluate_flow(run / "checkpoints" / "final.pt", pairs, tmp_path / "report", device="cpu",
                           batch_size=3, progress=False)
    folder = tmp_path / "report"
    payload = json.loads((folder / "report.json").read_text())
    truth = ShardDataset(sorted(str(p) for p in pairs.glob("test-*.h5")),
                         fields=("flow_fwd", "flow_bwd", "flow_valid", "sample_id"))
    with h5py.File(folder / "flows.h5") as f:
        group = f["predictions"]
        ids = group["sample_id"].asstr()[...].tolist()
        flows = group["flow"][...]
    assert ids == [truth[i]["sample_id"] for i in range(len(truth))] and flows.shape == (len(truth), 30, 40, 2)
    per_image, acc3 = [], []
    for i, pred in enumerate(flows):
        s = truth[i]
        fwd = plain_epe(pred, s["flow_fwd"], s["flow_valid"][..., 0])
        bwd = plain_epe(pred, s["flow_bwd"], s["flow_valid"][..., 1])
        gt, valid = (s["flow_bwd"], s["flow_valid"][..., 1]) if bwd < fwd else (s["flow_fwd"], s["flow_valid"][..., 0])
        per_image.append(min(fwd, bwd))
        acc3.append(float((np.sqrt(((pred - gt) ** 2).sum(axis=-1))[valid] < 3).mean()))
    assert payload["metrics"]["epe_min"] == pytest.approx(np.mean(per_image), rel=1e-5)
    assert payload["metrics"]["acc_3"] == pytest.approx(np.mean(acc3), rel=1e-5)
    assert payload["flow_sources"] == {"exact": len(truth)} and report.flow_sources == {"exact": len(truth)}
    assert payload["metrics"]["images"] == len(truth) and "| model |" in (folder / "report.md").read_text()
    import cv2

    sheet = cv2.imread(str(folder / "flows.png"))
    assert sheet is not None and sheet.shape[0] > 100 * min(len(truth), 6)  # one row per shown image
    again = evaluate_flow(run / "checkpoints" / "final.pt", pairs, tmp_path / "again", device="cpu",
                          batch_size=5, progress=False)
    assert again.metrics == report.metrics  # same model, same data: the same numbers
    assert payload["scores_training_data"] is False and "training data" not in (folder / "report.md").read_text()
    # the run's own training shards can be scored, but the report says what they are
    evaluate_flow(run / "checkpoints" / "final.pt", pairs, tmp_path / "fit", split="train", device="cpu",
                  progress=False)
    assert json.loads((tmp_path / "fit" / "report.json").read_text())["scores_training_data"] is True
    assert "warning: these shards are (part of) the run's training data" in (tmp_path / "fit" / "report.md").read_text()


def test_render_shards_with_exact_flow_train_and_evaluate(run, tmp_path):
    renders = GOLDEN / "render_flow_all_windows"  # a render job made with images.flow: true (test split)
    task = FlowTask(tiny("data.train_split=test", "train.batch_size=4"), renders)
    with seeded_torch(0):
        model = task.build_model()
    assert np.isfinite(first_batch_loss(task, model))
    report = evaluate_flow(run / "checkpoints" / "final.pt", renders, tmp_path / "r", device="cpu", progress=False)
    count = len(ShardDataset(renders, fields=()))
    assert report.flow_sources == {"exact": count} and report.metrics["images"] == count
    assert np.isfinite(report.metrics["epe_min"])


def test_bad_inputs_are_one_line_with_exit_2(run, pairs, tmp_path):
    def cli(*args: str):
        result = CliRunner().invoke(main, list(args))
        assert result.exit_code == 2, result.output
        assert len(result.output.strip().splitlines()) == 1 or "Usage:" in result.output
        return result.output

    composite = str(GOLDEN / "composite_demo")
    assert "flow needs blurgen.flowpairs/1 shards" in cli("train", "flow", "--data", composite, "--out",
                                                          str(tmp_path / "c"))
    assert "these are blurgen.composite/1" in cli("evaluate", "flow", "--run", str(run), "--data", composite,
                                                  "--out", str(tmp_path / "c"))
    assert "hold no flow (made with images.flow: false)" in cli("train", "flow", "--data",
                                                                str(GOLDEN / "render_demo"), "--out",
                                                                str(tmp_path / "r"))
    assert "has no 'train' shards" in cli("train", "flow", "--data", str(GOLDEN / "render_flow_all_windows"),
                                          "--out", str(tmp_path / "t"))
    assert "data.crop 64x64 is larger than the stored images (40x30)" in cli(
        "train", "flow", "--data", str(pairs), "--out", str(tmp_path / "k"), "--set", "data.crop=[64, 64]")
    assert "model.widths has 4 entries for model.levels=3" in cli(
        "train", "flow", "--data", str(pairs), "--out", str(tmp_path / "l"), "--set", "model.levels=3")
    assert "needs the 'val2' shards" in cli("evaluate", "flow", "--run", str(run), "--data", str(pairs),
                                            "--split", "val2", "--out", str(tmp_path / "s"))
    no_test = tmp_path / "no_test"  # the default split is test: a folder without one is refused, not scored whole
    no_test.mkdir()
    for shard in [*pairs.glob("train-*.h5"), *pairs.glob("val-*.h5")]:
        shutil.copyfile(shard, no_test / shard.name)
    refused = cli("evaluate", "flow", "--run", str(run), "--data", str(no_test), "--out", str(tmp_path / "o"))
    assert "needs the 'test' shards" in refused and "(splits there: train, val)" in refused
    foreign = save_checkpoint(tmp_path / "toy.pt", {"task": "retrieval", "model": {}})
    assert "checkpoint of the 'retrieval' task, not 'flow'" in cli(
        "evaluate", "flow", "--checkpoint", str(foreign), "--data", str(pairs), "--out", str(tmp_path / "f"))
    assert "give either --run RUN or --checkpoint FILE" in cli("evaluate", "flow", "--data", str(pairs),
                                                               "--out", str(tmp_path / "n"))
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "x").write_text("x")
    assert "already exists and is not empty" in cli("evaluate", "flow", "--run", str(run), "--data", str(pairs),
                                                    "--out", str(tmp_path / "full"))
    assert not any((tmp_path / name).exists() for name in "crtklsofn")  # nothing half-written
