"""Does blurgen data teach blur robustness? ``python bench/train_retrieval.py [--out DIR] [--quick]``.

Issue 10's evidence experiment, in the shape of the blur-retrieval paper's Table 2 (§5): one
dataset rendered by ``blurgen render`` from the demo assets, two BRIDGE models trained on its
training split with the same small backbone, config and budget, differing in one switch:

- "blur": the paper's training set, each epoch one image per trajectory with the blur levels
  balanced (§5, Setup), BLISS tuples (§3.2);
- "sharp-only": ``data.sharp_only=true``, only the sharp image of each trajectory ("Ours-sharp").

Both are scored by ``blurgen evaluate retrieval`` (:func:`evaluate_retrieval`: the same test
queries, role ``query``, against the same database, role ``database``, positives = same object)
and mAP@all is printed per query blur level side by side, with the untrained network (the
initial weights both runs start from, saved as a checkpoint) as the floor; each report folder
(JSON, Markdown, descriptors, the retrievals picture) is kept under ``OUT/reports``. The paper's finding
to look for: sharp-only training falls steeply as query blur grows, blur training holds.

Everything runs on the CPU from the ``train-retrieval`` ``demo`` preset (ResNet-18, 96x72 inputs,
batch 8 tuples of 7 images). ``--out`` keeps the assets, the render and the runs, so a re-run
reuses the render and finished runs (an interrupted run is resumed). ``--quick`` is a
few-minute smoke version (a tiny render, one epoch). docs/benchmarks.md records a full run;
docs/train.md ("Does the data teach?") says how the sizes and budget were chosen.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.config import to_json  # noqa: E402
from blurgen.config.loader import resolve_config  # noqa: E402
from blurgen.rng import seeded_torch  # noqa: E402
from blurgen.shards import ShardDataset  # noqa: E402
from blurgen.train.checkpoint import FINAL, LAST, save_checkpoint  # noqa: E402
from blurgen.train.data import split_files  # noqa: E402
from blurgen.train.distributed import init_distributed  # noqa: E402
from blurgen.train.loop import CHECKPOINTS, train  # noqa: E402
from blurgen.train.retrieval import TASK, RetrievalConfig, RetrievalTask, build_bridge  # noqa: E402
from blurgen.train.retrieval_eval import RetrievalReport, evaluate_retrieval  # noqa: E402

KIND = "train-retrieval"  # the config kind of `blurgen train retrieval` (its presets' prefix)

# Sizes. full: 8 categories x 8 demo objects (per category 5 train, 1 val, 2 test by the render's
# 0.7/0.15 split), 6 trajectories each, 2 of a test object's trajectories are queries and 4 the
# database; 128x96 at 8 spp renders in ~6 min on 2 cores. quick: a smoke test of the whole path.
SIZES = {
    "full": {"categories": 8, "objects": 8, "trajectories": 6, "queries": 2, "width": 128, "height": 96,
             "samples": 8, "epochs": 6},
    "quick": {"categories": 4, "objects": 4, "trajectories": 3, "queries": 1, "width": 96, "height": 72,
              "samples": 4, "epochs": 1},
}
VARIANTS = {"blur": False, "sharp-only": True}  # name -> data.sharp_only


def run_cli(args: list[str]) -> None:
    """One blurgen command in a child process (the public interface; its output goes to ours)."""
    subprocess.run([sys.executable, "-m", "blurgen", *args], check=True)


def make_data(out: Path, size: dict, seed: int) -> Path:
    """Demo assets and their render under ``out`` (kept: a finished render is reused)."""
    assets, data = out / "assets", out / "data"
    if not (assets / "objects.json").is_file():
        run_cli(["assets", "demo", "--out", str(assets), "--set", f"seed={seed}",
                 "--set", f"categories={size['categories']}", "--set", f"objects_per_category={size['objects']}",
                 "--set", "preview=false"])
    if not (data / "manifest.json").is_file():
        t0 = time.perf_counter()
        run_cli(["render", "--out", str(data), "--set", f"seed={seed}",
                 "--set", f"assets.objects={assets / 'objects.json'}",
                 "--set", f"assets.backgrounds={assets / 'backgrounds.json'}",
                 "--set", f"assets.objects_per_category={size['objects']}",
                 "--set", f"trajectory.per_object={size['trajectories']}",
                 "--set", f"split.queries_per_object={size['queries']}",
                 "--set", f"camera.width={size['width']}", "--set", f"camera.height={size['height']}",
                 "--set", f"cycles.samples={size['samples']}", "--set", "output.preview=false"])
        print(f"render: {time.perf_counter() - t0:.0f} s wall")
    return data


def describe_data(data: Path) -> None:
    """Images, trajectories and objects per split (and per role in the test split)."""
    for split in ("train", "val", "test"):
        try:
            shards = ShardDataset(split_files(data, split), fields=())
        except Exception:  # noqa: BLE001  (a split the render has none of)
            continue
        objects = np.asarray(shards.column("object_id"))
        trajectories = {(o, t) for o, t in zip(objects.tolist(), np.asarray(shards.column("trajectory_id")).tolist())}
        line = f"{split}: {len(objects)} images, {len(trajectories)} trajectories, {len(set(objects.tolist()))} objects"
        if split == "test":
            roles = np.asarray(shards.column("role"))
            line += f" ({int((roles == 'query').sum())} query, {int((roles == 'database').sum())} database images)"
        print(line)


def config_for(sharp_only: bool, epochs: int, seed: int, workers: int) -> RetrievalConfig:
    """The demo preset, the same for both variants except ``data.sharp_only``."""
    return resolve_config(RetrievalConfig, KIND, preset="demo", overrides={
        "seed": seed, "data": {"sharp_only": sharp_only},
        "train": {"epochs": epochs, "workers": workers, "checkpoint_every": 20}})


def train_variant(name: str, config: RetrievalConfig, data: Path, runs: Path) -> Path:
    """Train (or resume, or reuse) one variant; its final checkpoint."""
    run_dir = runs / name
    final = run_dir / CHECKPOINTS / FINAL
    if final.is_file():
        print(f"{name}: reusing {final}")
        return final
    t0 = time.perf_counter()
    task = RetrievalTask(config, data)
    result = train(task, run_dir, init_distributed("cpu"), resume=(run_dir / CHECKPOINTS / LAST).is_file(),
                   progress=False)
    seconds = time.perf_counter() - t0
    print(f"{name}: {result.epochs} epochs, {result.global_step} steps in {seconds:.0f} s; last validation "
          f"mAP@all {result.metrics.get('map_all', float('nan')):.3f}")
    return result.checkpoint


def untrained_checkpoint(config: RetrievalConfig, runs: Path) -> Path:
    """The initial BRIDGE weights both runs start from (``train`` builds them under the same
    ``seeded_torch(seed)``, BRIDGE first), saved as a checkpoint so the floor is scored the same way."""
    with seeded_torch(config.seed):
        bridge = build_bridge(config)
    return save_checkpoint(runs / "untrained" / CHECKPOINTS / FINAL, {
        "task": TASK, "config": to_json(config), "epoch": 0, "step": 0, "global_step": 0,
        "model": {f"bridge.{k}": v for k, v in bridge.state_dict().items()}})


def evaluate(checkpoint: Path, data: Path, report: Path) -> RetrievalReport:
    """``blurgen evaluate retrieval`` on the test split, into a fresh report folder."""
    shutil.rmtree(report, ignore_errors=True)  # the benchmark's own output: replaced on a re-run
    return evaluate_retrieval(checkpoint, data, report, device="cpu", progress=False)


def print_table(reports: dict[str, RetrievalReport]) -> None:
    names = list(reports)
    results = {n: r.map_all for n, r in reports.items()}
    first = results[names[0]]
    print("\nmAP@all (%) per query blur level, test queries vs test database:")
    print("| query level | queries | " + " | ".join(names) + " |")
    print("|---|---|" + "---|" * len(names))
    for level in sorted(first.per_level):
        cells = " | ".join(f"{100 * results[n].per_level[level]:.1f}" for n in names)
        print(f"| {level} | {first.per_level_queries[level]} | {cells} |")
    cells = " | ".join(f"**{100 * results[n].map:.1f}**" for n in names)
    print(f"| **all** | {first.num_queries} | {cells} |")
    cells = " | ".join(f"{100 * r.map_at_k.map:.1f}" for r in reports.values())
    print(f"| mAP@{reports[names[0]].k}, all | {first.num_queries} | {cells} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, help="keep assets, render and runs here (a re-run reuses them); "
                                                 "default: a temporary folder, removed at the end")
    parser.add_argument("--quick", action="store_true", help="a few-minute smoke version (tiny render, 1 epoch)")
    parser.add_argument("--epochs", type=int, help="epochs per model (default: 6, --quick 1)")
    parser.add_argument("--workers", type=int, default=1, help="data-loading workers (default 1: 2 cores)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    size = SIZES["quick" if args.quick else "full"]
    epochs = args.epochs or size["epochs"]
    out = args.out or Path(tempfile.mkdtemp(prefix="blurgen-bench-retrieval-"))
    out.mkdir(parents=True, exist_ok=True)
    print(f"machine: {machine()}")
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"{'quick' if args.quick else 'full'} sizes {size}, {epochs} epochs per model")
    start = time.perf_counter()
    try:
        data = make_data(out, size, args.seed)
        describe_data(data)
        configs = {name: config_for(sharp, epochs, args.seed, args.workers) for name, sharp in VARIANTS.items()}
        checkpoints = {name: train_variant(name, config, data, out / "runs") for name, config in configs.items()}
        checkpoints["untrained"] = untrained_checkpoint(configs["blur"], out / "runs")
        reports = {name: evaluate(path, data, out / "reports" / name) for name, path in checkpoints.items()}
        print_table(reports)
        summary = {name: {"map_all": r.map_all.map, "map_at_k": r.map_at_k.map, "k": r.k,
                          "queries": r.map_all.num_queries, "per_level": r.map_all.per_level,
                          "per_level_queries": r.map_all.per_level_queries, "report": str(r.folder)}
                   for name, r in reports.items()}
        (out / "results.json").write_text(json.dumps(summary, indent=2) + "\n")
        kept = f"; results in {out / 'results.json'}" if args.out else ""
        print(f"\nwhole benchmark: {time.perf_counter() - start:.0f} s wall{kept}")
    finally:
        if args.out is None:
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
