"""Does the flow network learn flow from one blurred image? ``python bench/train_flow.py [--out DIR] [--quick]``.

Issue 11's flow evidence: ``blurgen flowpairs synth`` makes procedural scenes (exact flow, split
by scene into train / val / test), the ``train-flow`` ``demo`` network trains on the training
split on the CPU, and ``blurgen evaluate flow`` (:func:`evaluate_flow`) scores the held-out test
scenes. Printed side by side on the same test images, with the same per-image scoring
(:func:`blurgen.train.flow_eval.score_image`): the trained network, the zero-flow prediction, and
the mean training flow (the mean forward vector over the training split's valid pixels, predicted
everywhere); over all valid pixels, and over the moving ones only (true flow >= MOVING_PX), since
about half of the procedural scenes' pixels stand still. The network's scores are recomputed from
the report's saved flows (``flows.h5``) and must equal the report's. Also training images/s on
this machine. The report folder is kept under OUT/report.

``--out`` keeps the data and the run (a finished run is reused, an interrupted one resumed);
``--quick`` is a one-minute smoke version of the whole path. ``--threads`` (default 1): torch's
intra-op threads. On a machine shared with other busy processes, two threads on two cores ran
this network 10-30x slower than one (the threads wait for each other), so one is the default.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Iterable

import h5py
import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.config.loader import resolve_config  # noqa: E402
from blurgen.flowpairs.config import FlowpairsConfig  # noqa: E402
from blurgen.flowpairs.pipeline import flowpairs_dataset  # noqa: E402
from blurgen.shards import ShardDataset  # noqa: E402
from blurgen.train.checkpoint import FINAL, LAST  # noqa: E402
from blurgen.train.data import split_files  # noqa: E402
from blurgen.train.distributed import init_distributed  # noqa: E402
from blurgen.train.flow import FlowTask  # noqa: E402
from blurgen.train.flow_config import KIND, FlowConfig  # noqa: E402
from blurgen.train.flow_eval import evaluate_flow, score_image, summarise  # noqa: E402
from blurgen.train.loop import CHECKPOINTS, train  # noqa: E402
from blurgen.train.runlog import read_metrics  # noqa: E402

# full: 1000 scenes of 48x32 (multiples of the demo network's stride 16), displacements up to
# 8 px (a quarter of the height, as 16 px was of the earlier 96x64), split 80/10/10 by scene; the
# demo preset's network, batch and rate, 24 passes (2400 steps) with the rate halved after 10
# and 18 (about 4 minutes on 2 quiet cores with 2 threads). The network sits at the zero-flow
# plateau for 400-1800 steps before it leaves it, so the earlier 400-step runs ended there; at
# the full rate a run that had left it fell back (docs/train-flow.md). quick: the same path on
# a handful of tiny scenes.
MOVING_PX = 1.0  # the extra columns score only pixels moving at least this much (half the pixels are static)
SIZES = {
    "full": {"scenes": 1000, "width": 48, "height": 32, "displacement": 8, "epochs": 24, "milestones": [10, 18]},
    "quick": {"scenes": 30, "width": 48, "height": 32, "displacement": 6, "epochs": 1, "milestones": []},
}


def make_data(out: Path, size: dict) -> Path:
    data = out / "data"
    if (data / "manifest.json").is_file():
        return data
    config = resolve_config(FlowpairsConfig, "flowpairs", overrides={
        "mode": "synth", "seed": 0, "split": {"val": 0.1, "test": 0.1},
        "synth": {"scenes": size["scenes"], "size": [size["width"], size["height"]],
                  "scene_displacement": size["displacement"]},
        "output": {"preview": False}})
    flowpairs_dataset(config, data)
    return data


def mean_training_flow(files: list[str]) -> np.ndarray:
    """The mean forward flow vector over every valid pixel of the training split."""
    total, count = np.zeros(2), 0
    for sample in ShardDataset(files, fields=("flow_fwd", "flow_valid")):
        valid = sample["flow_valid"][..., 0]
        total += sample["flow_fwd"][valid].sum(axis=0)
        count += int(valid.sum())
    return total / max(count, 1)


def moving_valid(sample: dict) -> np.ndarray:
    """``flow_valid`` narrowed to the pixels that move at least MOVING_PX in each direction."""
    speeds = np.stack([np.hypot(*sample[name].transpose(2, 0, 1)) for name in ("flow_fwd", "flow_bwd")], axis=-1)
    return np.asarray(sample["flow_valid"], dtype=bool) & (speeds >= MOVING_PX)


def scores(files: list[str], predictions: Iterable[np.ndarray]) -> tuple[dict, dict]:
    """The test scores of one prediction per image (shard order): over all valid pixels, and over
    the moving ones only (images without a moving pixel are left out of that mean)."""
    rows, moving = [], []
    for sample, pred in zip(ShardDataset(files, fields=("flow_fwd", "flow_bwd", "flow_valid")), predictions):
        pred = np.broadcast_to(pred, sample["flow_fwd"].shape).astype(np.float32)
        rows.append(score_image(pred, sample["flow_fwd"], sample["flow_bwd"], sample["flow_valid"]))
        moving.append(score_image(pred, sample["flow_fwd"], sample["flow_bwd"], moving_valid(sample)))
    return summarise(rows), summarise(moving)


def report_flows(files: list[str], report_dir: Path) -> np.ndarray:
    """The evaluation's saved predictions (flows.h5), checked to be in the shards' order."""
    with h5py.File(report_dir / "flows.h5", "r") as h5:
        ids = [v.decode() if isinstance(v, bytes) else str(v) for v in h5["predictions/sample_id"][()]]
        flows = h5["predictions/flow"][()]
    if ids != [str(v) for v in ShardDataset(files, fields=()).column("sample_id")]:
        raise RuntimeError(f"{report_dir}/flows.h5 is not of these shards: delete the report and run again")
    return flows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep data and run here (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the whole path")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="passes over the training split (default: 24, or 1 with --quick; the rate "
                             "is halved after 10 and 18: change that with --set train.lr_milestones=[...])")
    parser.add_argument("--set", dest="overrides", action="append", default=[],
                        help="train-flow config override KEY=VALUE, after the bench's own (e.g. train.lr=1e-3)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = SIZES["quick" if args.quick else "full"]
    if args.epochs is not None:
        size = dict(size, epochs=args.epochs)
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-flow-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    clock = time.perf_counter()
    data = make_data(out, size)
    train_files, test_files = split_files(data, "train"), split_files(data, "test")
    counts = {split: len(ShardDataset(split_files(data, split), fields=())) for split in ("train", "val", "test")}
    print(f"data: {counts} flow pairs of {size['width']}x{size['height']} in {time.perf_counter() - clock:.0f} s")

    config = resolve_config(FlowConfig, KIND, preset="demo", overrides=[
        f"train.epochs={size['epochs']}", f"train.lr_milestones={size['milestones']}", "train.log_every=1",
        *args.overrides])
    run = out / "run"
    clock = time.perf_counter()
    if not (run / CHECKPOINTS / FINAL).is_file():
        resume = (run / CHECKPOINTS / LAST).is_file()
        train(FlowTask(config, data), run, init_distributed("cpu"), resume=resume)
    train_s = time.perf_counter() - clock
    records = read_metrics(run / "metrics.jsonl")
    steps = [r for r in records if r["kind"] == "step"]
    epochs = [r for r in records if r["kind"] == "epoch"]
    # the loop logs each step's running images/s within its epoch: the epochs' last values
    rates = [r["images_per_s"] for r, nxt in zip(steps, steps[1:] + [None])
             if nxt is None or nxt["epoch"] != r["epoch"]]
    print(f"training: {len(epochs)} epochs, {len(steps)} steps of {config.train.batch_size} images in "
          f"{train_s:.0f} s wall (incl. validation and worker start; 0 when reused); training images/s per "
          f"epoch: {', '.join(f'{r:.1f}' for r in rates)}")
    print("validation epe_min per epoch: " + ", ".join(f"{r.get('epe_min', float('nan')):.3f}" for r in epochs))

    report_dir = out / "report"
    if not (report_dir / "report.json").is_file():
        evaluate_flow(run / CHECKPOINTS / FINAL, data, report_dir, device="cpu")
    model = json.loads((report_dir / "report.json").read_text())["metrics"]
    mean = mean_training_flow(train_files)
    network, network_moving = scores(test_files, report_flows(test_files, report_dir))
    # the bench's own scoring of the saved flows must reproduce the evaluation's report
    assert abs(network["epe_min"] - model["epe_min"]) < 1e-6, (network["epe_min"], model["epe_min"])
    rows = {"trained network (demo)": (network, network_moving),
            "zero flow": scores(test_files, itertools.repeat(np.zeros(2))),
            f"mean training flow ({mean[0]:.2f}, {mean[1]:.2f})": scores(test_files, itertools.repeat(mean))}
    print(f"\ntest split: {counts['test']} held-out scenes; moving: pixels whose true flow is >= {MOVING_PX:g} px "
          f"({network_moving['images']} images, those without one left out)")
    print("| prediction | EPE min(fwd, bwd) | EPE fwd | EPE bwd | <1 px % | <3 px % | <5 px % | EPE min, moving "
          "| <1 px %, moving |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, (m, mv) in rows.items():
        print(f"| {name} | {m['epe_min']:.3f} | {m['epe_fwd']:.3f} | {m['epe_bwd']:.3f} | {100 * m['acc_1']:.1f} "
              f"| {100 * m['acc_3']:.1f} | {100 * m['acc_5']:.1f} | {mv['epe_min']:.3f} | {100 * mv['acc_1']:.1f} |")
    print(f"\nreport: {report_dir}")


if __name__ == "__main__":
    main()
