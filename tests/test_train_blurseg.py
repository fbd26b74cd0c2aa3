"""``blurgen train blur-seg`` / ``blurgen evaluate blur-seg`` end to end on tiny composite data made per
curriculum stage: learning, the curriculum in the log, determinism, resuming after ``kill -9``, two
gloo ranks under torchrun, the report (re-scored from its saved PNGs by an independent count),
outside folders and one-line refusals."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.composite.config import KIND as COMPOSITE_KIND
from blurgen.composite.config import CompositeConfig
from blurgen.composite.pipeline import composite_dataset
from blurgen.config import resolve_config
from blurgen.rng import seeded_torch
from blurgen.shards import ShardDataset
from blurgen.train.blurseg import BlurSegTask
from blurgen.train.blurseg_config import KIND, BlurSegConfig
from blurgen.train.checkpoint import load_checkpoint
from blurgen.train.data import augment_generator
from blurgen.train.distributed import DistContext
from blurgen.train.loop import train
from blurgen.train.runlog import read_metrics

pytestmark = pytest.mark.slow  # trains real (tiny) U-Nets and starts child processes

CPU = DistContext(torch.device("cpu"))
# one torch thread here and in the children: on a shared, loaded machine two threads that spin-wait
# for each other made a step ten times slower (the numbers do not depend on it)
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def stages(tmp_path_factory) -> Path:
    """One composite folder per curriculum stage: 5 procedural photos x 3 samples at 32 x 32 each."""
    root = tmp_path_factory.mktemp("blurseg")
    for k, stage in enumerate(("stabilization", "mixed", "advanced")):
        config = resolve_config(CompositeConfig, COMPOSITE_KIND, preset="demo", overrides=[
            f"seed={k}", "sources.procedural_count=5", "sources.procedural_size=[160, 120]", "samples.per_source=3",
            "samples.width=32", "samples.height=32", "samples.min_instance_px=16", "samples.val_fraction=0.2",
            f"blur.stage={stage}", "output.preview=false"])
        composite_dataset(config, root / stage, progress=False)
    return root


@pytest.fixture(scope="module")
def heldout(tmp_path_factory) -> Path:
    """A composite folder made apart from the training data (other photos): train split only."""
    folder = tmp_path_factory.mktemp("heldout") / "mixed"
    config = resolve_config(CompositeConfig, COMPOSITE_KIND, preset="demo", overrides=[
        "seed=9", "sources.procedural_count=5", "sources.procedural_size=[160, 120]", "samples.per_source=3",
        "samples.width=32", "samples.height=32", "samples.min_instance_px=16", "samples.val_fraction=0",
        "blur.stage=mixed", "output.preview=false"])
    composite_dataset(config, folder, progress=False)
    return folder


TINY = ["model.decoder_channels=[8, 8, 8, 8, 8]", "model.aux_stages=2", "train.batch_size=4", "train.workers=0",
        "train.log_every=1", "augment.scale=[0.75, 1.25]", "eval.batch_size=16"]


def tiny(*sets: str) -> BlurSegConfig:
    return resolve_config(BlurSegConfig, KIND, preset="demo", overrides=[*TINY, *sets])


def first_batch_loss(task: BlurSegTask, model: torch.nn.Module) -> float:
    batch = next(task.batches(0, 0, CPU))
    rng = augment_generator(task.config.seed, 0, 0, CPU.device)  # what the loop gives step 0
    with torch.no_grad():
        return float(task.loss(model, batch, CPU, rng)[0])


def test_training_follows_the_curriculum_lowers_the_loss_and_validates(stages, tmp_path):
    task = BlurSegTask(tiny("train.epochs=4", "curriculum.mixed_from=1", "curriculum.advanced_from=2",
                            "train.lr=0.003"), stages)
    with seeded_torch(task.config.seed):
        initial = task.build_model()
    before = first_batch_loss(task, initial)
    result = train(task, tmp_path / "run", CPU, progress=False)
    trained = task.build_model()
    trained.load_state_dict(load_checkpoint(result.checkpoint, "blur-seg")["model"])
    assert first_batch_loss(task, trained) < 0.9 * before  # the same batch, the same augmentation
    epochs = [r for r in read_metrics(tmp_path / "run" / "metrics.jsonl") if r["kind"] == "epoch"]
    # one stage per epoch, each adding its samples to the earlier ones' (12 train samples a stage)
    assert [r["data_stage"] for r in epochs] == [0.0, 1.0, 2.0, 2.0]
    assert [r["data_samples"] for r in epochs] == [12.0, 24.0, 36.0, 36.0]
    assert all(r["data_sharp_references"] >= 1 for r in epochs)
    for key in ("mean_iou", "iou_blur", "f1", "pr_auc", "image_f1"):
        assert 0.0 <= result.metrics[key] <= 1.0
    assert 0 < result.metrics["pixel_threshold"] < 1 and 0 < result.metrics["image_threshold"] < 1


def test_same_config_data_and_seed_give_the_same_weights_and_metrics_whatever_the_workers(stages, tmp_path):
    runs = [train(BlurSegTask(tiny("train.epochs=1", f"train.workers={workers}"), stages), tmp_path / name, CPU,
                  progress=False) for name, workers in (("a", 2), ("b", 0))]
    assert runs[0].metrics == runs[1].metrics
    a, b = (load_checkpoint(r.checkpoint, "blur-seg")["model"] for r in runs)
    assert all(torch.equal(a[k], b[k]) for k in a)
    other = train(BlurSegTask(tiny("train.epochs=1", "seed=5"), stages), tmp_path / "c", CPU, progress=False)
    assert other.metrics != runs[0].metrics


CHILD = """
import sys
from pathlib import Path
from blurgen.config import resolve_config
from blurgen.train.blurseg import BlurSegTask
from blurgen.train.blurseg_config import KIND, BlurSegConfig
from blurgen.train.distributed import init_distributed
from blurgen.train.loop import train

class Announcing(BlurSegTask):
    def batches(self, epoch, start_step, dist):
        for step, batch in enumerate(super().batches(epoch, start_step, dist), start=start_step):
            print(f"batch {epoch} {step}", flush=True)
            yield batch

config = resolve_config(BlurSegConfig, KIND, preset="demo", overrides=[a for a in sys.argv[3:] if a != "--resume"])
train(Announcing(config, Path(sys.argv[1])), sys.argv[2], init_distributed("cpu"), resume="--resume" in sys.argv,
      progress=False)
"""


def test_a_run_killed_with_sigkill_and_resumed_ends_like_an_uninterrupted_one(stages, tmp_path):
    data = stages / "advanced"  # 12 samples + 1 sharp reference: 3 steps an epoch
    sets = [*TINY, "train.epochs=2", "train.checkpoint_every=2", "curriculum.mixed_from=0",
            "curriculum.advanced_from=0"]
    whole = train(BlurSegTask(tiny(*sets[len(TINY):]), data), tmp_path / "whole", CPU, progress=False)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    run = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(data), str(run), *sets], stdout=subprocess.PIPE,
                            text=True, env=ENV)
    for line in proc.stdout:  # epoch 1 step 2 comes after global step 5 and the checkpoint at step 4
        if line.strip() == "batch 1 2":
            proc.send_signal(signal.SIGKILL)
            break
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    state = load_checkpoint(run / "checkpoints" / "last.pt", "blur-seg")
    assert (state["epoch"], state["step"], state["global_step"]) == (1, 1, 4)
    resumed = subprocess.run([sys.executable, str(script), str(data), str(run), "--resume", *sets],
                             capture_output=True, text=True, env=ENV)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.splitlines()[0] == "batch 1 1"  # continues at the batch after the checkpoint
    final = load_checkpoint(run / "checkpoints" / "final.pt", "blur-seg")
    assert final["metrics"] == whole.metrics
    expected = load_checkpoint(whole.checkpoint, "blur-seg")["model"]
    assert all(torch.equal(final["model"][k], expected[k]) for k in expected)


@pytest.fixture(scope="module")
def trained(stages, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("trained") / "run"
    train(BlurSegTask(tiny("train.epochs=1"), stages), run, CPU, progress=False)
    return run


def _levels(path: Path) -> np.ndarray:
    return cv2.imread(str(path), cv2.IMREAD_UNCHANGED)


def test_evaluation_report_rescored_from_its_saved_maps(stages, heldout, trained, tmp_path):
    out = tmp_path / "report"
    held_out = ["--data", str(heldout), "--split", "train"]  # a folder the run never saw: its only split
    result = CliRunner().invoke(main, ["evaluate", "blur-seg", "--run", str(trained), *held_out, "--out", str(out),
                                       "--device", "cpu"])
    assert result.exit_code == 0, result.output
    report = json.loads((out / "report.json").read_text())
    assert report["inputs"]["split"] == "train" and report["scores_training_data"] is False
    samples = ShardDataset(heldout, fields=("blur_mask", "sample_id", "blurred"))
    assert report["images"] == len(samples) + int(np.sum([s["blurred"] for s in samples]))  # + sharp references
    with h5py.File(out / "predictions.h5") as f:
        ids = f["images/sample_id"].asstr()[...].tolist()
        pngs = f["images/blur_png"].asstr()[...].tolist()
        scores = f["images/image_score"][...]
    masks = {s["sample_id"]: np.asarray(s["blur_mask"], bool) for s in samples}
    # recount the confusion at the report's threshold from the saved 16-bit maps alone
    t = round(report["thresholds"]["pixel"] * 65535)
    tp = fp = fn = tn = 0
    for sample_id, png in zip(ids, pngs):
        levels = _levels(out / "predictions" / png)
        truth = masks[sample_id] if sample_id in masks else np.zeros(levels.shape, bool)  # "#sharp": all sharp
        predicted = levels >= t
        tp += int((predicted & truth).sum())
        fp += int((predicted & ~truth).sum())
        fn += int((~predicted & truth).sum())
        tn += int((~predicted & ~truth).sum())
    pixel = report["pixel"]
    assert pixel["iou_blur"] == pytest.approx(tp / (tp + fp + fn), abs=1e-12)
    assert pixel["pixel_accuracy"] == pytest.approx((tp + tn) / (tp + fp + fn + tn), abs=1e-12)
    assert report["thresholds"]["source"].startswith("grid search on the training run's validation")
    # image level: a sample is blurred when its mask has a pixel; its reference never is
    labels = np.array([masks[i].any() if i in masks else False for i in ids])
    predicted = scores >= report["image"]["threshold"]
    assert report["image"]["accuracy"] == pytest.approx(np.mean(predicted == labels), abs=1e-12)
    text = (out / "report.md").read_text()
    assert "| Mean IoU (%) |" in text and "| Specificity (%) |" in text
    assert cv2.imread(str(out / "sheet.png")) is not None
    again = CliRunner().invoke(main, ["evaluate", "blur-seg", "--run", str(trained), *held_out,
                                      "--out", str(tmp_path / "again"), "--device", "cpu"])
    assert again.exit_code == 0
    assert json.loads((tmp_path / "again" / "report.json").read_text())["pixel"] == pixel  # same numbers
    # --val: thresholds searched again on the same validation split the run validated on: the same ones
    val = CliRunner().invoke(main, ["evaluate", "blur-seg", "--run", str(trained), *held_out,
                                    "--val", str(stages), "--out", str(tmp_path / "val"), "--device", "cpu"])
    assert val.exit_code == 0, val.output
    searched = json.loads((tmp_path / "val" / "report.json").read_text())["thresholds"]
    assert searched["source"].startswith("grid search on the 'val' split of")
    assert (searched["pixel"], searched["image"]) == (report["thresholds"]["pixel"], report["thresholds"]["image"])


def test_evaluation_refuses_the_thresholds_shards_and_flags_the_training_shards(stages, trained, tmp_path):
    def files(split: str) -> list[str]:  # in curriculum order (one shard per stage folder)
        return [str((stages / stage / f"{split}-00000-of-00001.h5").resolve())
                for stage in ("stabilization", "mixed", "advanced")]

    sources = load_checkpoint(trained / "checkpoints" / "final.pt", "blur-seg")["sources"]
    assert sources == {"train": {"folder": str(stages.resolve()), "split": "train", "files": files("train")},
                       "validation": {"folder": str(stages.resolve()), "split": "val", "files": files("val")}}

    def run(name: str, *args: str):
        return CliRunner().invoke(main, ["evaluate", "blur-seg", "--run", str(trained), "--out", str(tmp_path / name),
                                         "--device", "cpu", *args])

    chosen = "are the ones the thresholds were chosen on"
    for name, args, message in (
            ("all", ["--data", str(stages)], "has no 'test' split (splits there: train, val): name the held-out"),
            ("val", ["--data", str(stages), "--split", "val"], chosen),               # the run's validation shards
            ("stage", ["--data", str(stages / "mixed"), "--split", "val"], chosen),   # one stage folder's of them
            ("again", ["--data", str(stages / "mixed"), "--split", "val", "--val", str(stages)], chosen)):  # --val's
        refused = run(name, *args)
        assert refused.exit_code == 2 and message in refused.output, refused.output
        assert len(refused.output.strip().splitlines()) == 1 and not (tmp_path / name).exists()
    fit = run("fit", "--data", str(stages / "advanced"), "--split", "train")  # allowed, but said to be training data
    assert fit.exit_code == 0, fit.output
    assert json.loads((tmp_path / "fit" / "report.json").read_text())["scores_training_data"] is True
    assert "warning: these shards are (part of) the run's training data" in (tmp_path / "fit" / "report.md").read_text()


def _write(path: Path, image: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


def test_outside_folders_score_and_refuse_in_one_line(trained, tmp_path):
    rng = np.random.default_rng(0)
    images, masks = tmp_path / "images", tmp_path / "masks"
    for name in ("a.jpg", "sub/b.png"):
        _write(images / name, rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
        mask = np.zeros((40, 50), np.uint8)
        mask[5:20, 10:30] = 255
        _write((masks / name).with_suffix(".png"), mask)

    def run(*args: str):
        return CliRunner().invoke(main, ["evaluate", "blur-seg", "--run", str(trained), "--device", "cpu", *args])

    ok = run("--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "cuhk"))
    assert ok.exit_code == 0, ok.output
    report = json.loads((tmp_path / "cuhk" / "report.json").read_text())
    assert report["pixel"]["blur_pixels"] == 2 * 15 * 20 and report["masked_images"] == 2
    pair = run("--blurred", str(images), "--sharp", str(masks), "--out", str(tmp_path / "gopro"))
    assert pair.exit_code == 0, pair.output
    gopro = json.loads((tmp_path / "gopro" / "report.json").read_text())
    assert gopro["pixel"] is None and gopro["image"]["images"] == 4 and gopro["image"]["blurred_images"] == 2

    _write(masks / "sub" / "b.png", np.zeros((41, 50), np.uint8))  # a mask of another size
    mismatch = run("--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "m"))
    assert mismatch.exit_code == 2 and "is 50x41 but its image" in mismatch.output
    assert len(mismatch.output.strip().splitlines()) == 1 and not (tmp_path / "m").exists()
    (masks / "sub" / "b.png").unlink()
    missing = run("--images", str(images), "--masks", str(masks), "--out", str(tmp_path / "n"))
    assert missing.exit_code == 2 and "no blur mask for" in missing.output and "b.png" in missing.output
    assert len(missing.output.strip().splitlines()) == 1 and not (tmp_path / "n").exists()
    alone = run("--images", str(images), "--out", str(tmp_path / "x"))
    assert alone.exit_code == 2 and "--images and --masks go together" in alone.output
    both = run("--data", str(images), "--blurred", str(images), "--sharp", str(masks), "--out", str(tmp_path / "y"))
    assert both.exit_code == 2 and "exactly one of" in both.output


def test_bad_training_inputs_are_one_line_with_exit_2(stages, tmp_path):
    def run(*args: str):
        return CliRunner().invoke(main, ["train", "blur-seg", *TINY_CLI, *args])

    starved = run("--data", str(stages / "advanced"), "--out", str(tmp_path / "s"))  # demo: stabilization first
    assert starved.exit_code == 2 and "epoch 1 trains on stage 'stabilization'" in starved.output
    assert not (tmp_path / "s").exists()
    render_like = run("--data", str(Path(__file__).parent / "golden" / "render_demo"), "--out", str(tmp_path / "r"))
    assert render_like.exit_code == 2 and "blur segmentation needs blurgen.composite/1 shards" in render_like.output
    bad_encoder = run("--data", str(stages), "--out", str(tmp_path / "e"), "--set", "model.encoder=nope")
    assert bad_encoder.exit_code == 2 and "not a segmentation_models_pytorch encoder" in bad_encoder.output


TINY_CLI = [arg for item in TINY for arg in ("--set", item)]


def test_two_gloo_ranks_train_blur_seg_with_the_global_batch(stages, tmp_path):
    sets = [*TINY_CLI, "--set", "train.epochs=1", "--set", "curriculum.mixed_from=0", "--set",
            "curriculum.advanced_from=0"]
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                             "-m", "blurgen", "train", "blur-seg", "--data", str(stages), "--out", str(tmp_path / "run"),
                             "--device", "cpu", *sets], capture_output=True, text=True, env=ENV)
    assert result.returncode == 0, result.stderr[-2000:]
    state = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt", "blur-seg")
    samples = ShardDataset([str(p) for p in stages.glob("*/train-*.h5")], fields=())
    blurred = int(np.sum(samples.column("blurred")))
    items = len(samples) + round(0.1 * blurred)  # the samples and the sharp references of 10 % of the blurred
    assert state["world"] == 2 and state["global_step"] == items // (4 * 2)  # batches of 4 on each of 2 ranks
    assert "mean_iou" in state["metrics"]  # rank 0 validated
