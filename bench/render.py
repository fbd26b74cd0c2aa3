"""Blurred images per CPU-second at matched quality: ``python bench/render.py [options]``.

Compares, on the same demo objects and trajectories, two ways to make the blurred images of
the centred windows k = 1..10 (window k covers sub-intervals [(23 - k) // 2, +k)):

(a) blurgen as `blurgen render` does it: the sub-intervals the centred windows use (6..15, 10
    of 23) rendered once each at S spp (Cycles motion blur over one sub-interval); the image of
    window k is the mean of its k layers. A second row renders all 23 layers, what
    ``images.windows: all`` pays (and those 23 layers give 185 windows, not 10);
(b) the published generators' way: each of the 10 blurred images rendered by Cycles with motion
    blur over its whole window, at S' spp (several S' are tried).

Quality is the PSNR (RGBA, linear, premultiplied, peak 1, whole image) of each image against a
reference render of the same window at ``--ref-spp`` (rendered directly, not from layers, so
the reference does not take blurgen's method for granted; cached under ``--cache``). Cost is
the CPU time of the Blender child processes (user + system, from RUSAGE_CHILDREN), one process
per approach and S', Blender's start-up included; the start-up (launch, scene set-up, mesh
imports: a process that renders nothing) is measured too and also shown subtracted, since a
production batch spreads it over many more trajectories than this bench. The verdict compares
blurgen with the cheapest S' whose mean PSNR is at least blurgen's, and with the direct cost
interpolated (log CPU time linear in PSNR between the two S' that bracket blurgen's mean PSNR)
to equal PSNR.

Last, the whole pipeline (``--pipeline-trajectories``, paper settings: 320x240, 16 spp) is run
and the share of its wall time spent outside Cycles' render calls is printed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.assets import demo_assets  # noqa: E402
from blurgen.render.blender import RenderedItem, render_batch, script_path  # noqa: E402

INSTANTS, SUB = 24, 23
KS = list(range(1, 11))
FOCAL_MM, SENSOR_MM = 35.0, 36.0


def windows() -> list[list[int]]:
    """The centred windows [start, k] for k = 1..10."""
    return [[(SUB - k) // 2, k] for k in KS]


def pick_objects(n: int) -> list[tuple[str, Path]]:
    """n demo objects, one per category first, so shapes differ."""
    manifest = demo_assets().objects_manifest()
    ids = sorted(manifest.ids())
    by_category: dict[str, list[str]] = {}
    for asset_id in ids:
        by_category.setdefault(asset_id.split("_")[0], []).append(asset_id)
    order = [group[i] for i in range(max(map(len, by_category.values())))
             for group in by_category.values() if i < len(group)]
    return [(asset_id, Path(manifest.path_of(asset_id))) for asset_id in order[:n]]


def unproject(u: float, v: float, depth: float, width: int, height: int) -> list[float]:
    f = FOCAL_MM / SENSOR_MM * width
    return [(u - width / 2) / f * depth, (height / 2 - v) / f * depth, -depth]


def trajectory(rng: np.random.Generator, width: int, height: int) -> dict:
    """A 6D trajectory that stays in frame and moves enough to blur: 25-45 % of the width."""
    angle = rng.uniform(0, 2 * math.pi)
    length = rng.uniform(0.25, 0.45) * width
    du, dv = length * math.cos(angle) / 2, length * math.sin(angle) / 2
    cu, cv = width / 2 + rng.uniform(-0.05, 0.05) * width, height / 2 + rng.uniform(-0.05, 0.05) * height
    z0, z1 = rng.uniform(1.7, 2.3, size=2)
    p0 = np.array(unproject(cu - du, cv - dv, z0, width, height))
    p1 = np.array(unproject(cu + du, cv + dv, z1, width, height))
    axis = rng.normal(size=3)
    quat = rng.normal(size=4)
    turn, phase = rng.uniform(0.5, 2.0), rng.uniform(0, 2 * math.pi)
    return {"scale": 1.0, "positions": [list(p0 + (p1 - p0) * t / SUB) for t in range(INSTANTS)],
            "axis": list(axis / np.linalg.norm(axis)), "angles": list(phase + turn * np.arange(INSTANTS) / SUB),
            "base_quat": list(quat / np.linalg.norm(quat))}


def make_job(args, items: list[dict], samples: int) -> dict:
    return {"width": args.width, "height": args.height,
            "camera": {"focal_mm": FOCAL_MM, "sensor_width_mm": SENSOR_MM},
            "cycles": {"device": "CPU", "samples": samples, "adaptive_threshold": 0.0, "denoise": False,
                       "max_bounces": 4, "threads": 0, "pixel_filter_width": 1.5},
            "silhouette_samples": 1, "items": items}


def render(args, trajs: list[dict], work: Path, tag: str, samples: int, renders: dict) -> tuple[list[dict], float]:
    """Render every trajectory in one Blender process; (arrays per trajectory, child CPU seconds)."""
    items = [{"item_id": i, "mesh": str(t["mesh"]), "out": str(work / tag / f"item-{i}.npz"), **t["pose"],
              "seed": 1000 * i + samples, "renders": {"sharp": False, "silhouettes": False, **renders}}
             for i, t in enumerate(trajs)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = render_batch(make_job(args, items, samples), work / f"{tag}-work", timeout_s=1800)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    bad = [r for r in results.values() if not isinstance(r, RenderedItem)]
    if bad:
        raise SystemExit(f"render failed: {bad}")
    return [results[i].load() for i in range(len(trajs))], cpu


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def references(args, trajs: list[dict], work: Path) -> np.ndarray:
    """(n, 10, H, W, 4) direct renders of every window at ref_spp, cached by content."""
    key = hashlib.sha256(json.dumps({"size": [args.width, args.height], "spp": args.ref_spp,
                                     "trajs": [{**t["pose"], "mesh": t["id"]} for t in trajs],
                                     "script": hashlib.sha256(script_path().read_bytes()).hexdigest()},
                                    sort_keys=True).encode()).hexdigest()[:16]
    cache = Path(args.cache) / f"ref-{key}.npy"
    if cache.is_file():
        return np.load(cache)
    print(f"rendering references at {args.ref_spp} spp (once; cached in {cache})...", flush=True)
    arrays, _ = render(args, trajs, work, "ref", args.ref_spp, {"sub_intervals": False, "windows": windows()})
    refs = np.stack([a["windows"] for a in arrays])
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_name(cache.name + f".{os.getpid()}.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, refs)
    os.replace(tmp, cache)
    return refs


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--trajectories", type=int, default=3, help="one demo object each")
    parser.add_argument("--spp", type=int, default=8, help="S: samples per sub-interval layer (blurgen)")
    parser.add_argument("--direct-spp", default="8,16,32,48,64,96", help="S' values for the direct renders")
    parser.add_argument("--ref-spp", type=int, default=1024, help="samples of the reference renders")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pipeline-trajectories", type=int, default=24,
                        help="trajectories of the whole-pipeline run (0 skips it)")
    parser.add_argument("--pipeline-spp", type=int, default=16, help="samples of the pipeline run (paper preset)")
    cache = Path(os.environ.get("BLURGEN_CACHE") or Path.home() / ".cache" / "blurgen") / "bench-render"
    parser.add_argument("--cache", default=str(cache), help="where the reference renders are kept")
    args = parser.parse_args(argv)
    direct_spp = [int(s) for s in args.direct_spp.split(",")]

    objects = pick_objects(args.trajectories)
    trajs = [{"id": oid, "mesh": path,
              "pose": trajectory(np.random.default_rng([args.seed, i]), args.width, args.height)}
             for i, (oid, path) in enumerate(objects)]
    n_images = len(trajs) * len(KS)
    with tempfile.TemporaryDirectory(prefix="blurgen-bench-render-") as tmp:
        work = Path(tmp)
        refs = references(args, trajs, work)

        _, startup = render(args, trajs, work, "startup", 1, {"sub_intervals": False})
        rows = []
        t0 = time.process_time()
        layers, cpu = render(args, trajs, work, "blurgen", args.spp, {"sub_intervals": True})
        images = np.stack([[a["layers"][s:s + k].mean(axis=0) for s, k in windows()] for a in layers])
        cpu += time.process_time() - t0  # the averaging (and npz loading) in this process
        rows.append(("blurgen: all 23 layers", args.spp, len(trajs) * SUB, cpu, images))
        needed = sorted({s + j for s, k in windows() for j in range(k)})
        t0 = time.process_time()
        arrays, cpu = render(args, trajs, work, "blurgen-needed", args.spp, {"sub_intervals": needed})
        images = np.stack([[a["layers"][s - needed[0]:s - needed[0] + k].mean(axis=0) for s, k in windows()]
                           for a in arrays])
        cpu += time.process_time() - t0
        name = f"blurgen: layers {needed[0]}..{needed[-1]}"
        rows.append((name, args.spp, len(trajs) * len(needed), cpu, images))
        for spp in direct_spp:
            arrays, cpu = render(args, trajs, work, f"direct-{spp}", spp,
                                 {"sub_intervals": False, "windows": windows()})
            rows.append(("direct window renders", spp, n_images, cpu, np.stack([a["windows"] for a in arrays])))

    # An image's PSNR against its reference; "mean PSNR" averages dB over all images.
    scores = [np.array([[psnr(img[i, w], refs[i, w]) for w in range(len(KS))] for i in range(len(trajs))])
              for *_, img in rows]
    print(f"\nmachine: {machine()}")
    print(f"images: {args.width}x{args.height}, {len(trajs)} trajectories ({', '.join(t['id'][:17] for t in trajs)}), "
          f"windows k=1..10 centred, {n_images} blurred images per approach; reference {args.ref_spp} spp direct")
    print(f"\nBlender start-up (launch, set-up, {len(trajs)} mesh imports) per process: {startup:.2f} CPU s")
    print(f"\n{'approach':<29}{'spp':>5}{'renders':>9}{'CPU s':>8}{'img/CPU-s':>11}{'excl. start-up':>16}"
          f"{'mean PSNR':>11}{'min PSNR':>10}")
    for (name, spp, renders, cpu, _), s in zip(rows, scores):
        print(f"{name:<29}{spp:>5}{renders:>9}{cpu:>8.1f}{n_images / cpu:>11.2f}{n_images / (cpu - startup):>16.2f}"
              f"{s.mean():>10.2f}{s.min():>10.2f}")
    print("\nmean PSNR (dB) by window length k:")
    labels = ["all layers" if r[0].startswith("blurgen: all") else "blurgen" if r[0].startswith("blurgen")
              else f"direct S'={r[1]}" for r in rows]
    print(f"{'k':>3}" + "".join(f"{label:>13}" for label in labels))
    for w, k in enumerate(KS):
        print(f"{k:>3}" + "".join(f"{s[:, w].mean():>13.2f}" for s in scores))

    print()
    for label, overhead in (("as measured", 0.0), ("excluding start-up", startup)):
        direct = [(r[1], r[3] - overhead, s.mean()) for r, s in zip(rows, scores) if not r[0].startswith("blurgen")]
        for (name, spp, _, cpu, _), s in [(r, s) for r, s in zip(rows, scores) if r[0].startswith("blurgen")]:
            print(f"{label}, {name} (S={spp}, {s.mean():.2f} dB): "
                  f"{verdict(n_images / (cpu - overhead), s.mean(), direct, n_images)}")
    all_windows = sum(SUB - k + 1 for k in KS)
    print(f"(with images.windows: all, the 23 layers give all {all_windows} windows with k <= 10 per trajectory, "
          f"not just the {len(KS)} centred ones, for no further rendering: {all_windows / len(KS):.1f}x the "
          f"images of the 'all 23 layers' row)")
    if args.pipeline_trajectories:
        pipeline_share(args.pipeline_trajectories, args.pipeline_spp)


def pipeline_share(trajectories: int, spp: int) -> None:
    """The whole `blurgen render` pipeline at 320x240: share of wall time outside Cycles' render calls.

    Outside Cycles: Blender start-up and mesh import, scene updates, EXR hand-over, the parent's
    windows, compositing, labels, filters and shard writing (overlapped with the next batch).
    """
    from blurgen.config import resolve_config
    from blurgen.render.config import RenderConfig
    from blurgen.render.pipeline import render_dataset

    config = resolve_config(RenderConfig, "render", preset="demo", overrides=[
        "assets.objects_per_category=1", f"trajectory.per_object={-(-trajectories // 6)}",
        f"cycles.samples={spp}", "output.preview=false", "camera.width=320", "camera.height=240"])
    with tempfile.TemporaryDirectory(prefix="blurgen-bench-pipeline-") as out:
        started = time.perf_counter()
        summary = render_dataset(config, out, progress=False)
        wall = time.perf_counter() - started
    cycles = sum(t.timings.get("cycles", 0.0) for t in summary.tasks)
    items = sum(t.sources for t in summary.tasks)
    print(f"\npipeline (blurgen render, demo objects, 320x240, {spp} spp, {items} trajectories in batches of "
          f"{config.farm.batch_size}, {summary.samples} images): wall {wall:.1f} s, inside Cycles' render "
          f"calls {cycles:.1f} s, outside Cycles {100 * (1 - cycles / wall):.1f} % of wall time "
          f"(target <= 10 %); {summary.samples / wall:.2f} images/s")


def verdict(rate: float, target: float, direct: list[tuple[int, float, float]], n_images: int) -> str:
    """blurgen's images per CPU-second relative to direct renders of matched mean PSNR."""
    above = [d for d in direct if d[2] >= target]
    if not above:
        spp, cpu, best = max(direct, key=lambda d: d[2])
        return (f"no S' tried reaches it (best S'={spp}: {best:.2f} dB); "
                f"{rate / (n_images / cpu):.1f}x the images per CPU-second of that one")
    spp, cpu, quality = min(above, key=lambda d: d[1])
    text = f"{rate / (n_images / cpu):.1f}x the images per CPU-second of direct S'={spp} ({quality:.2f} dB)"
    below = [d for d in direct if d[2] < target]
    if below:
        lo = max(below, key=lambda d: d[2])
        hi = min(above, key=lambda d: d[2])
        f = (target - lo[2]) / (hi[2] - lo[2])
        cpu_equal = math.exp(math.log(lo[1]) + f * (math.log(hi[1]) - math.log(lo[1])))
        text += f"; {rate / (n_images / cpu_equal):.1f}x at equal PSNR (interpolated)"
    return text


if __name__ == "__main__":
    sys.exit(main())
