"""``blurgen train retrieval`` end to end on a tiny real render: learning, determinism, resuming
at a batch, DDP with two gloo ranks, and one-line refusals."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from blurgen.assets.config import DemoAssetsConfig
from blurgen.assets.demo import make_demo_assets
from blurgen.cli import main
from blurgen.config import resolve_config
from blurgen.render.config import RenderConfig
from blurgen.render.pipeline import render_dataset
from blurgen.train.checkpoint import load_checkpoint
from blurgen.train.distributed import DistContext
from blurgen.train.data import augment_generator
from blurgen.train.loop import train
from blurgen.train.retrieval import RetrievalTask
from blurgen.train.retrieval_config import KIND, RetrievalConfig

pytestmark = pytest.mark.slow  # renders with Blender and trains real (tiny) ResNets

CPU = DistContext(torch.device("cpu"))
GOLDEN = Path(__file__).parent / "golden"


@pytest.fixture(scope="module")
def render(tmp_path_factory) -> Path:
    """3 categories x 4 objects (2 train, 1 val, 1 test each) x 2 trajectories at 64x48."""
    root = tmp_path_factory.mktemp("retrieval")
    demo = make_demo_assets(root / "assets", DemoAssetsConfig(
        categories=3, objects_per_category=4, texture_size=64, backgrounds=3, background_width=160,
        background_height=120, preview=False))
    config = resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={demo.objects}", f"assets.backgrounds={demo.backgrounds}",
        "assets.objects_per_category=4", "trajectory.per_object=2", "camera.width=64", "camera.height=48",
        "cycles.samples=2", "images.max_window=4", "split.train=0.5", "split.val=0.25",
        "output.preview=false"])
    render_dataset(config, root / "data", progress=False)
    return root / "data"


def tiny(*sets: str) -> RetrievalConfig:
    return resolve_config(RetrievalConfig, KIND, preset="demo", overrides=[
        "data.input_size=[64, 48]", "model.head_dim=32", "model.hidden_dim=16", "train.batch_size=2",
        "train.workers=0", "train.log_every=1", *sets])


def first_batch_loss(task: RetrievalTask, model: torch.nn.Module) -> float:
    batch = next(task.batches(0, 0, CPU))
    rng = augment_generator(task.config.seed, 0, 0, CPU.device)  # what the loop gives step 0
    with torch.no_grad():
        return float(task.loss(model, batch, CPU, rng)[0])


def test_training_lowers_the_loss_and_validates_each_epoch(render, tmp_path):
    task = RetrievalTask(tiny("train.epochs=3"), render)
    from blurgen.rng import seeded_torch

    with seeded_torch(task.config.seed):
        initial = task.build_model()
    before = first_batch_loss(task, initial)
    result = train(task, tmp_path / "run", CPU, progress=False)
    trained = task.build_model()
    trained.load_state_dict(load_checkpoint(result.checkpoint, "retrieval")["model"])
    assert first_batch_loss(task, trained) < 0.8 * before  # the same batch, the same augmentation
    assert 0.0 <= result.metrics["map_all"] <= 1.0  # validated on the val split (3 objects)
    assert (tmp_path / "run" / "loss.png").is_file() and (tmp_path / "run" / "validation.png").is_file()


def test_same_config_data_and_seed_give_the_same_weights_and_metrics_whatever_the_workers(render, tmp_path):
    runs = [train(RetrievalTask(tiny("train.epochs=1", f"train.workers={workers}"), render), tmp_path / name, CPU,
                  progress=False) for name, workers in (("a", 2), ("b", 0))]
    assert runs[0].metrics == runs[1].metrics
    a, b = (load_checkpoint(r.checkpoint, "retrieval")["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_a_resumed_epoch_gets_exactly_the_batches_it_had_left(render):
    task = RetrievalTask(tiny(), render)
    whole = list(task.batches(1, 0, CPU))
    tail = list(task.batches(1, 2, CPU))
    assert len(tail) == len(whole) - 2 >= 1
    for got, want in zip(tail, whole[2:]):
        assert torch.equal(got["image"], want["image"]) and torch.equal(got["label"], want["label"])
    assert not torch.equal(whole[0]["label"], list(task.batches(2, 0, CPU))[0]["label"]) or \
        not torch.equal(whole[0]["image"], list(task.batches(2, 0, CPU))[0]["image"])  # epochs differ


def test_sharp_only_trains_on_sharp_images_only(render):
    task = RetrievalTask(tiny("data.sharp_only=true"), render)
    batch = next(task.batches(0, 0, CPU))
    # a sharp image's severity is that of the object at rest: its blur level is 1
    sharp_levels = {int(task.columns.blur_level[i]) for i in range(len(task.columns))
                    if task.columns.window_count[i] == 0}
    assert sharp_levels == {1} and batch["blur_severity"].max() < 0.1 + 1e-6


def test_two_gloo_ranks_run_the_retrieval_task(render, tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "blurgen", "train", "retrieval", "--data", str(render), "--out",
                             str(tmp_path / "ddp"), "--device", "cpu", "--set", "train.epochs=1",
                             "--set", "train.batch_size=1", "--set", "train.workers=0", "--set",
                             "data.input_size=[64, 48]",
                             # a weight-0 loss leaves the box head without gradient: DDP must not wait for it
                             "--set", "loss.localisation=0"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "1 epochs" in result.stdout and result.stdout.count("model:") == 1  # rank 0 alone reports
    state = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "final.pt", "retrieval")
    assert state["epoch"] == 1 and state["global_step"] >= 1


def test_bad_inputs_are_one_line_with_exit_2(render, tmp_path):
    def run(*args: str):
        return CliRunner().invoke(main, ["train", "retrieval", *args])

    composite = run("--data", str(GOLDEN / "composite_demo"), "--out", str(tmp_path / "c"))
    assert composite.exit_code == 2 and "retrieval needs blurgen.render/1 shards" in composite.output
    empty = run("--data", str(render), "--out", str(tmp_path / "e"), "--set", "data.train_split=distractor")
    assert empty.exit_code == 2 and "has no 'distractor' shards" in empty.output
    assert not (tmp_path / "e").exists() and not (tmp_path / "c").exists()  # nothing half-written
    # the training split holds far fewer than 500 images of other objects for any query
    starved = run("--data", str(render), "--out", str(tmp_path / "s"), "--set", "loss.negatives=500")
    assert starved.exit_code == 2 and "BLISS finds no training tuple (" in starved.output
    assert "few_negatives" in starved.output and not (tmp_path / "s").exists()
    no_data = run("--out", str(tmp_path / "n"))
    assert no_data.exit_code == 2 and "Missing option '--data'" in no_data.output
    gpu = run("--data", str(render), "--out", str(tmp_path / "g"), "--device", "cuda:7")
    assert gpu.exit_code == 2 and "cuda:7" in gpu.output
    for name in ("cuda:x", "gpu", "CPU"):
        bad = run("--data", str(render), "--out", str(tmp_path / "g"), "--device", name)
        assert bad.exit_code == 2 and "is not one of auto, cpu, cuda, cuda:N" in bad.output
