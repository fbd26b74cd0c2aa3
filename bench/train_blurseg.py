"""Does blurgen's composite data teach blur segmentation? ``python bench/train_blurseg.py [--out DIR] [--quick]``.

Issue 11's evidence experiment for ``blurgen train blur-seg``, all on the CPU:

1. training data: ``blurgen composite`` on the built-in procedural photos (640x480, the default:
   a mask-centric crop around a small instance of a smaller photo would be magnified, and
   magnification softens the whole sample as blur would), one folder per curriculum stage
   (stabilization, mixed, advanced), 96x96 samples;
2. two held-out test sets, neither seen in training or validation:
   - "composite, other photos": procedural photos of another seed (other figures, objects and
     backgrounds), advanced stage;
   - "real photos": the 9 real-scene HDR photographs that ship inside installed packages (bpy's
     studio-light worlds and USD's Stinson Beach HDRI; not blurgen's procedural photos), tone
     mapped to sRGB, each cut into 4 square tiles; instance masks made here by k-means colour
     regions (connected, 1-40 % of the tile) and written as label-image mask files; blurred by
     ``blurgen composite --images --masks`` (advanced stage), image-centric samples only (a 256-pixel
     tile shrunk to 96: never magnified, see 1.);
3. the model: the ``train-blur-seg`` ``demo`` preset (ResNet-18 U-Net, frequency channel, deep
   supervision, curriculum two epochs a stage), trained with ``blurgen train blur-seg``'s task;
4. three methods scored by the same report code (``blurseg_eval.write_report``), thresholds from
   the training data's validation split (pixel: best IoU(blur); image: best F1):
   - the trained model (``evaluate_blurseg``, thresholds from its last validation);
   - "no blur": probability 0 everywhere;
   - a classical detector: the local variance of the Laplacian (``blurseg_frequency``, the
     network's frequency cue itself) mapped to a blur score ``1 / (1 + var / s)``, ``s`` the
     median variance over the validation images, thresholds grid-searched on validation;
5. prints mIoU, IoU(blur), blur F1, PR-AUC and image-level F1 / ROC AUC side by side, and the
   training images/s; writes ``OUT/summary.json`` and ``OUT/summary.md``; every report folder is kept
   under ``OUT/reports``.

``--threads`` sets torch's threads (default 1: on a machine shared by several busy processes,
two spin-waiting threads made a step ten times slower). ``--quick``: a few-minute smoke run.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ.setdefault("OPENCV_IO_ENABLE_OPENEXR", "1")  # read the EXR photos (set before cv2 loads)

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.color import linear_to_srgb_uint8  # noqa: E402
from blurgen.composite.config import KIND as COMPOSITE_KIND  # noqa: E402
from blurgen.composite.config import CompositeConfig  # noqa: E402
from blurgen.composite.pipeline import composite_dataset  # noqa: E402
from blurgen.config import resolve_config  # noqa: E402
from blurgen.train.blurseg import BlurSegTask, shard_items  # noqa: E402
from blurgen.train.blurseg_config import KIND, BlurSegConfig  # noqa: E402
from blurgen.train.blurseg_data import composite_split_files  # noqa: E402
from blurgen.train.blurseg_eval import Thresholds, evaluate_blurseg, write_report  # noqa: E402
from blurgen.train.blurseg_frequency import laplacian_variance, variance_to_blur_score  # noqa: E402
from blurgen.train.blurseg_metrics import SegmentationTally, quantise  # noqa: E402
from blurgen.train.checkpoint import FINAL  # noqa: E402
from blurgen.train.distributed import init_distributed  # noqa: E402
from blurgen.train.loop import CHECKPOINTS, train  # noqa: E402
from blurgen.train.runlog import read_metrics  # noqa: E402

SITE = Path(torch.__file__).resolve().parents[1]  # site-packages
REAL_PHOTOS = sorted(glob.glob(str(SITE / "bpy" / "*" / "datafiles" / "studiolights" / "world" / "*.exr"))) + \
    sorted(glob.glob(str(SITE / "bpy" / "lib" / "usd" / "hdx" / "resources" / "textures" / "*.hdr")))
STAGES = ("stabilization", "mixed", "advanced")
SIZES = {
    "full": {"photos": 30, "per_source": 4, "test_photos": 12, "real_per_tile": 2, "epochs": 6, "side": 96},
    "quick": {"photos": 6, "per_source": 2, "test_photos": 3, "real_per_tile": 1, "epochs": 3, "side": 64},
}
CLASSICAL_WINDOW = 9  # pixels: the classical detector's window (about a tenth of a 96-pixel sample)


def composite(out: Path, seed: int, stage: str, size: dict, **extra: object) -> Path:
    """One ``blurgen composite`` job (skipped when its folder is complete)."""
    if (out / "manifest.json").is_file():
        return out
    overrides = {"seed": seed, "samples": {"width": size["side"], "height": size["side"],
                                           "min_instance_px": 24, **extra.pop("samples", {})},
                 "blur": {"stage": stage}, "output": {"preview": False}, **extra}
    config = resolve_config(CompositeConfig, COMPOSITE_KIND, preset="demo", overrides=overrides)
    composite_dataset(config, out, progress=False)
    return out


def real_photo_tiles(folder: Path) -> tuple[Path, Path]:
    """The packaged HDR photos as sRGB tiles (images/) and k-means region label masks (masks/)."""
    images, masks = folder / "images", folder / "masks"
    if images.is_dir():
        return images, masks
    images.mkdir(parents=True)
    masks.mkdir(parents=True)
    for path in REAL_PHOTOS:
        hdr = cv2.imread(path, cv2.IMREAD_UNCHANGED)[:, :, ::-1].astype(np.float32)  # BGR -> RGB, linear
        hdr = np.clip(hdr * (0.18 / max(float(np.median(hdr)), 1e-6)), 0, 1)  # expose: median grey at 18 %
        h, w = hdr.shape[:2]
        side = h // 2
        for k in range(4):  # four square tiles across the middle band (least distortion)
            tile = linear_to_srgb_uint8(hdr[h // 4:h // 4 + side, k * w // 4:k * w // 4 + side])
            name = f"{Path(path).stem}-{k}"
            cv2.imwrite(str(images / f"{name}.png"), tile[:, :, ::-1])
            cv2.imwrite(str(masks / f"{name}.png"), region_labels(tile))
    return images, masks


def region_labels(tile: np.ndarray, k: int = 6) -> np.ndarray:
    """Instance labels from colour: k-means (seeded) in Lab, connected parts of 1-40 % of the tile."""
    lab = cv2.cvtColor(cv2.GaussianBlur(tile, (5, 5), 0), cv2.COLOR_RGB2LAB).reshape(-1, 3).astype(np.float32)
    cv2.setRNGSeed(0)
    _, clusters, _ = cv2.kmeans(lab, k, None, (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 0.5), 3,
                                cv2.KMEANS_PP_CENTERS)
    clusters = clusters.reshape(tile.shape[:2])
    labels = np.zeros(tile.shape[:2], np.uint16)
    next_label = 1
    for c in range(k):
        count, parts = cv2.connectedComponents((clusters == c).astype(np.uint8))
        for part in range(1, count):
            region = parts == part
            if 0.01 <= region.mean() <= 0.4:
                labels[region] = next_label
                next_label += 1
    return labels


def classical_predictions(items, window: int, scale: float):
    for item in items:
        x = torch.from_numpy(item.image).permute(2, 0, 1)[None].float() / 255
        score = variance_to_blur_score(laplacian_variance(x, window), scale)[0, 0].numpy()
        yield item, score, None


def no_blur_predictions(items):
    for item in items:
        yield item, np.zeros(item.image.shape[:2], np.float32), None


def classical_calibration(val_files: list[str], window: int, step: float, top: float) -> tuple[float, Thresholds]:
    """The classical detector's scale (median validation variance) and thresholds (grid search)."""
    variances = [laplacian_variance(torch.from_numpy(it.image).permute(2, 0, 1)[None].float() / 255, window)
                 for it in shard_items(val_files)]
    scale = float(torch.cat([v.flatten() for v in variances]).median())
    tally = SegmentationTally(top)
    for item, prob, _ in classical_predictions(shard_items(val_files), window, scale):
        tally.add(item.sample_id, quantise(prob), item.mask, item.label)
    pixel, image = tally.best_thresholds(step)
    return scale, Thresholds(pixel, image, "grid search on the training data's validation split")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out/train-blurseg"))
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default 6, 3 with --quick); the curriculum gives each stage a third")
    parser.add_argument("--photos", type=int, default=None,
                        help="procedural photos per curriculum stage for training (default 30, 6 with --quick)")
    args = parser.parse_args()
    size = dict(SIZES["quick" if args.quick else "full"])
    size.update({key: value for key, value in (("epochs", args.epochs), ("photos", args.photos)) if value is not None})
    torch.set_num_threads(args.threads)
    print(machine(), f"; torch threads {args.threads}, loader workers {args.workers}", flush=True)
    out = args.out
    clock = time.perf_counter()

    train_data = out / "data" / "train"
    for k, stage in enumerate(STAGES):
        composite(train_data / stage, k, stage, size, sources={"procedural_count": size["photos"]},
                  samples={"per_source": size["per_source"], "val_fraction": 0.15})
    held_out = composite(out / "data" / "test-composite", 1000, "advanced", size,
                         sources={"procedural_count": size["test_photos"]},
                         samples={"per_source": size["per_source"], "val_fraction": 0.0})
    images, masks = real_photo_tiles(out / "data" / "real-photos")
    real = composite(out / "data" / "test-real", 2000, "advanced", size,
                     sources={"images": str(images), "masks": str(masks), "min_area": 0.01, "max_area": 0.4},
                     samples={"per_source": size["real_per_tile"], "val_fraction": 0.0, "mask_centric": 0.0})
    print(f"data made in {time.perf_counter() - clock:.0f} s", flush=True)

    third = size["epochs"] // 3
    config = resolve_config(BlurSegConfig, KIND, preset="demo", overrides={
        "train": {"epochs": size["epochs"], "workers": args.workers, "log_every": 1},
        "curriculum": {"mixed_from": third, "advanced_from": 2 * third}})
    run = out / "run"
    task = BlurSegTask(config, train_data)
    started = time.perf_counter()
    if not (run / CHECKPOINTS / FINAL).is_file():
        resume = (run / CHECKPOINTS / "last.pt").is_file()
        train(task, run, init_distributed("cpu"), resume=resume, progress=True)
    train_s = time.perf_counter() - started
    # an epoch's rate: its last step's images_per_s (images since the epoch began over the time since)
    last_step = {r["epoch"]: r["images_per_s"] for r in read_metrics(run / "metrics.jsonl") if r["kind"] == "step"}
    rates = [last_step[e] for e in sorted(last_step)]
    print(f"trained in {train_s:.0f} s; training images/s per epoch median {np.median(rates):.2f}, "
          f"range {min(rates):.2f}-{max(rates):.2f}", flush=True)

    reports = out / "reports"
    shutil.rmtree(reports, ignore_errors=True)
    val_files = composite_split_files(train_data, "val")
    top, step = config.eval.image_top_fraction, config.eval.threshold_step
    scale, classical_t = classical_calibration(val_files, CLASSICAL_WINDOW, step, top)
    none_t = Thresholds(0.5, 0.5, "any: the prediction is 0 everywhere")
    results: dict[str, dict[str, dict]] = {}
    for test_name, folder in (("composite, other photos", held_out), ("real photos", real)):
        slug = "composite" if test_name.startswith("composite") else "real"
        files = composite_split_files(folder, "train")
        header = {"source": "shards", "inputs": {"data": str(folder)}}
        methods = {
            "blur-seg (trained)": evaluate_blurseg(run / CHECKPOINTS / FINAL, reports / f"{slug}-model", data=folder,
                                                   split="train", device="cpu", progress=False),
            "no blur": write_report(no_blur_predictions(shard_items(files)), reports / f"{slug}-no-blur",
                                    thresholds=none_t, top_fraction=top, header=header, method="no blur",
                                    progress=False),
            "Laplacian variance": write_report(classical_predictions(shard_items(files), CLASSICAL_WINDOW, scale),
                                               reports / f"{slug}-laplacian", thresholds=classical_t,
                                               top_fraction=top, header=header, method="Laplacian variance",
                                               progress=False)}
        results[test_name] = {name: {"pixel": r.pixel.__dict__ if r.pixel else None,
                                     "image": r.image.as_dict() if r.image else None, "images": r.images,
                                     "thresholds": r.thresholds.__dict__}
                              for name, r in methods.items()}

    rows = ["| test set | method | mIoU | IoU(blur) | blur F1 | PR-AUC | pixel acc. | image F1 | image ROC AUC |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for test_name, methods in results.items():
        for name, r in methods.items():
            p, i = r["pixel"], r["image"]

            def pct(v):
                return "–" if v is None or v != v else f"{100 * v:.2f}"
            rows.append(f"| {test_name} ({r['images']} images) | {name} | {pct(p['mean_iou'])} | {pct(p['iou_blur'])} | "
                        f"{pct(p['f1'])} | {pct(p['pr_auc'])} | {pct(p['pixel_accuracy'])} | {pct(i['f1'])} | "
                        f"{pct(i['roc_auc'])} |")
    table = "\n".join(rows)
    summary = {"machine": machine(), "threads": args.threads, "workers": args.workers, "size": size,
               "train_samples": int(len(task.stages)), "train_seconds": train_s,
               "images_per_s_median": float(np.median(rates)), "images_per_s_range": [min(rates), max(rates)],
               "classical": {"window": CLASSICAL_WINDOW, "scale": scale, "thresholds": classical_t.__dict__},
               "final_validation": json.loads(json.dumps(read_metrics(run / "metrics.jsonl")[-1])),
               "results": results, "total_seconds": time.perf_counter() - clock}
    (out / "summary.json").write_text(json.dumps(summary, indent=2, default=float) + "\n")
    (out / "summary.md").write_text(table + "\n")
    print(table)
    print(f"total {time.perf_counter() - clock:.0f} s -> {out}")


if __name__ == "__main__":
    main()
