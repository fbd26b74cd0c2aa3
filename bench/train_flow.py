"""Does the flow network learn flow from one blurred image? ``python bench/train_flow.py [--out DIR] [--quick]``.

Issue 11's flow evidence: ``blurgen flowpairs synth`` makes procedural scenes (exact flow, split
by scene into train / val / test), the ``train-flow`` ``demo`` network trains on the training
split on the CPU, and ``blurgen evaluate flow`` (:func:`evaluate_flow`) scores the held-out test
scenes. Printed side by side on the same test images, with the same per-image scoring
(:func:`blurgen.train.flow_eval.score_image`): the trained network, the zero-flow prediction, and
the mean training flow (the mean forward vector over the training split's valid pixels, predicted
everywhere). Also training images/s on this machine. The report folder is kept under OUT/report.

``--out`` keeps the data and the run (a finished run is reused, an interrupted one resumed);
``--quick`` is a one-minute smoke version of the whole path. ``--threads`` (default 1): torch's
intra-op threads. On a machine shared with other busy processes, two threads on two cores ran
this network 10-30x slower than one (the threads wait for each other), so one is the default.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

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

# full: 500 scenes of 96x64 (multiples of the demo network's stride 16), displacements up to
# 16 px, split 80/10/10 by scene; the demo preset's network and batch, `epochs` passes (about
# 10-15 minutes on 2 shared cores). quick: the same path on a handful of tiny scenes.
SIZES = {
    "full": {"scenes": 500, "width": 96, "height": 64, "displacement": 16, "epochs": 6},
    "quick": {"scenes": 30, "width": 48, "height": 32, "displacement": 6, "epochs": 1},
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


def constant_scores(files: list[str], vector: np.ndarray) -> dict:
    """The test scores of predicting ``vector`` at every pixel of every image."""
    rows = []
    for sample in ShardDataset(files, fields=("flow_fwd", "flow_bwd", "flow_valid")):
        pred = np.broadcast_to(vector.astype(np.float32), sample["flow_fwd"].shape)
        rows.append(score_image(pred, sample["flow_fwd"], sample["flow_bwd"], sample["flow_valid"]))
    return summarise(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="keep data and run here (default: a temp folder)")
    parser.add_argument("--quick", action="store_true", help="a smoke run of the whole path")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (default 1)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    size = SIZES["quick" if args.quick else "full"]
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-flow-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}; torch {torch.__version__}, {torch.get_num_threads()} threads")

    clock = time.perf_counter()
    data = make_data(out, size)
    train_files, test_files = split_files(data, "train"), split_files(data, "test")
    counts = {split: len(ShardDataset(split_files(data, split), fields=())) for split in ("train", "val", "test")}
    print(f"data: {counts} flow pairs of {size['width']}x{size['height']} in {time.perf_counter() - clock:.0f} s")

    config = resolve_config(FlowConfig, KIND, preset="demo", overrides=[f"train.epochs={size['epochs']}",
                                                                   "train.log_every=1"])
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
    if (report_dir / "report.json").is_file():
        model = json.loads((report_dir / "report.json").read_text())["metrics"]
    else:
        model = evaluate_flow(run / CHECKPOINTS / FINAL, data, report_dir, device="cpu").metrics
    mean = mean_training_flow(train_files)
    rows = {"trained network (demo)": model, "zero flow": constant_scores(test_files, np.zeros(2)),
            f"mean training flow ({mean[0]:.2f}, {mean[1]:.2f})": constant_scores(test_files, mean)}
    print(f"\ntest split: {counts['test']} held-out scenes")
    print("| prediction | EPE min(fwd, bwd) | EPE fwd | EPE bwd | <1 px % | <3 px % | <5 px % |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, m in rows.items():
        print(f"| {name} | {m['epe_min']:.3f} | {m['epe_fwd']:.3f} | {m['epe_bwd']:.3f} | {100 * m['acc_1']:.1f} "
              f"| {100 * m['acc_3']:.1f} | {100 * m['acc_5']:.1f} |")
    print(f"\nreport: {report_dir}")


if __name__ == "__main__":
    main()
