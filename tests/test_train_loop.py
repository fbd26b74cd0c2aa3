"""The shared training loop (blurgen.train.loop) on a toy task: learning, checkpoints, resume after
kill -9, determinism, DDP with two gloo ranks, and its one-line refusals."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from blurgen.errors import BlurgenError
from blurgen.train.checkpoint import load_checkpoint, load_weights, save_checkpoint
from blurgen.train.distributed import DistContext
from blurgen.train.loop import train
from blurgen.train.runlog import read_metrics
from train_toy import TRUE_W, ToyConfig, ToyTask

CPU = DistContext(torch.device("cpu"))
TOY = Path(__file__).with_name("train_toy.py")
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TOY.parent), os.environ.get("PYTHONPATH", "")])}


def weights(checkpoint: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(checkpoint, "toy")["model"]


def test_training_lowers_the_loss_and_leaves_checkpoints_log_and_curves(tmp_path):
    result = train(ToyTask(), tmp_path, CPU, progress=False)
    records = read_metrics(tmp_path / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    assert len(steps) == 3 * 12 and [r["epoch"] for r in epochs] == [1, 2, 3]
    assert epochs[-1]["mse"] < 0.2 * epochs[0]["mse"]  # the fit converges towards y = x.w + 0.5
    w = weights(result.checkpoint)["weight"][0].numpy()
    assert np.abs(w - TRUE_W).max() < np.abs(TRUE_W).max()  # moved towards the true weights
    assert result.metrics == {"mse": epochs[-1]["mse"]} and result.global_step == 36
    assert (tmp_path / "loss.png").stat().st_size > 0 and (tmp_path / "validation.png").stat().st_size > 0
    with pytest.raises(BlurgenError, match="already holds a run"):
        train(ToyTask(), tmp_path, CPU, progress=False)


def test_the_learning_rate_follows_its_milestones_as_torchs_multisteplr_does(tmp_path):
    settings = dataclasses.replace(ToyConfig().train, lr=0.04, lr_milestones=(1, 2), lr_gamma=0.1)
    train(ToyTask(ToyConfig(train=settings)), tmp_path, CPU, progress=False)
    logged = {}
    for r in read_metrics(tmp_path / "metrics.jsonl"):
        if r["kind"] == "step":
            logged.setdefault(r["epoch"], set()).add(r["lr"])
    # the oracle: torch's own step schedule, stepped once per epoch
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=0.04)
    schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 2], gamma=0.1)
    expected = {}
    for epoch in range(3):
        expected[epoch] = optimizer.param_groups[0]["lr"]
        optimizer.step()
        schedule.step()
    assert logged.keys() == expected.keys()
    for epoch, rates in logged.items():
        assert len(rates) == 1 and rates.pop() == pytest.approx(expected[epoch], rel=1e-12)


def test_same_config_and_seed_give_the_same_weights_and_metrics(tmp_path):
    a = train(ToyTask(), tmp_path / "a", CPU, progress=False)
    b = train(ToyTask(), tmp_path / "b", CPU, progress=False)
    assert a.metrics == b.metrics
    assert all(torch.equal(x, y) for x, y in zip(weights(a.checkpoint).values(), weights(b.checkpoint).values()))
    other = train(ToyTask(ToyConfig(seed=4)), tmp_path / "c", CPU, progress=False)
    assert other.metrics != a.metrics


@pytest.mark.slow  # two child Python processes with torch
def test_a_run_killed_with_sigkill_and_resumed_ends_like_an_uninterrupted_one(tmp_path):
    whole = train(ToyTask(ToyConfig(train=dataclasses.replace(ToyConfig().train, checkpoint_every=5))),
                  tmp_path / "whole", CPU, progress=False)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(TOY), str(run), "--every", "5"], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    for line in proc.stdout:  # epoch 1 step 7 is asked for after global step 17 and its checkpoint at 15
        if line.strip() == "batch 1 7":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(run / "checkpoints" / "last.pt", "toy")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 3, 15)
    resumed = subprocess.run([sys.executable, str(TOY), str(run), "--every", "5", "--resume"],
                             capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "batch 1 3"  # continues at the batch after the checkpoint
    final = load_checkpoint(run / "checkpoints" / "final.pt", "toy")
    assert final["metrics"] == whole.metrics
    assert all(torch.equal(x, y) for x, y in zip(final["model"].values(), weights(whole.checkpoint).values()))
    steps = [r["global_step"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "step"]
    assert steps == list(range(1, 37))  # the log of the resumed run is that of an uninterrupted one


@pytest.mark.slow  # torchrun starts two ranks
def test_two_gloo_ranks_train_like_one_process_with_the_global_batch(tmp_path):
    # rank r takes every 2nd index of the epoch's draw, 2 per batch: together the 4 samples one
    # process takes per batch, so the averaged gradients, and the weights, are the same
    single = train(ToyTask(ToyConfig(train=dataclasses.replace(ToyConfig().train, batch_size=4))),
                   tmp_path / "one", CPU, progress=False)
    ddp = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                          str(TOY), str(tmp_path / "two"), "--batch", "2"],
                         capture_output=True, text=True, env=ENV)
    assert ddp.returncode == 0, ddp.stderr[-2000:]
    two = weights(tmp_path / "two" / "checkpoints" / "final.pt")
    for name, value in weights(single.checkpoint).items():
        assert torch.allclose(two[name], value, atol=1e-5), name


def test_resume_refusals_are_one_line(tmp_path):
    with pytest.raises(BlurgenError, match="no checkpoints/last.pt to continue from"):
        train(ToyTask(), tmp_path / "none", CPU, resume=True, progress=False)
    train(ToyTask(), tmp_path / "run", CPU, progress=False)
    with pytest.raises(BlurgenError, match="made with another config"):
        train(ToyTask(ToyConfig(seed=9)), tmp_path / "run", CPU, resume=True, progress=False)
    other_data = ToyTask()
    other_data.data_identity = lambda: "toy-other"  # type: ignore[method-assign]
    with pytest.raises(BlurgenError, match="trained on other data"):
        train(other_data, tmp_path / "run", CPU, resume=True, progress=False)
    two_ranks = DistContext(torch.device("cpu"), rank=0, world=2)  # refused before any collective
    with pytest.raises(BlurgenError, match="made by 1 rank\\(s\\), this run has 2"):
        train(ToyTask(), tmp_path / "run", two_ranks, resume=True, progress=False)
    foreign = save_checkpoint(tmp_path / "other.pt", {"task": "flow", "model": {}})
    with pytest.raises(BlurgenError, match="checkpoint of the 'flow' task, not 'toy'"):
        load_checkpoint(foreign, "toy")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(BlurgenError, match="not a readable blurgen checkpoint"):
        load_checkpoint(tmp_path / "junk.pt", "toy")


def test_weights_that_do_not_fit_the_model_are_one_line():
    source = torch.nn.Linear(2, 1)
    assert torch.equal(load_weights(torch.nn.Linear(2, 1), source.state_dict()).weight, source.weight)
    with pytest.raises(BlurgenError, match="does not match its config") as err:
        load_weights(torch.nn.Linear(3, 1), source.state_dict())
    assert "\n" not in str(err.value)
