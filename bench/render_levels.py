"""The render preset's blur-level histogram against the paper's Table 1: ``python bench/render_levels.py``.

Renders a preset (default ``paper``) on the built-in demo objects and backgrounds and prints the
share of images per blur level, query and database apart, beside Table 1 of the blur-retrieval
paper (Zou et al., ECCV 2024), with their total-variation distance (TV = half the L1 distance of
the two level histograms over levels 1..10; the paper has no image above level 6).
The first table counts the blurred images only (the paper renders the sharp image
"additionally"; docs/render.md gives the reading), the second every image, and with
``--max-level N`` a third drops the blurred images above level N (a what-if for other values of
render's ``labels.max_level``, which the paper preset sets to 6).

To keep it cheap on a small machine every demo object is a test object (``split.train`` and
``split.val`` set to 0) and the first sixth of each object's trajectories are queries (the
paper: 20 of 120), so both histograms are measured on one run; the roles are drawn from the same
trajectory law, so they differ only by sampling noise. That noise is printed: the standard
deviation of TV over a bootstrap that resamples whole trajectories (an image's levels within a
trajectory are correlated, so images are not resampled one by one).

``--proxy`` replaces Blender by the labels' own source: render labels images from the object's
exact coverage (:class:`blurgen.render.coverage.MeshCoverage`), which needs only the mesh and the
item's poses, so the proxy computes it for the same trajectory draws (here at a coarser time step
and supersampling, ``--proxy-step-px`` and ``--proxy-supersample``) and labels and filters it
with render's own functions (``blurgen.render.labels``); only the IoU filter's endpoint
silhouettes differ (the coverage at that instant instead of 1-spp renders). ``--validate``
renders the same items and reports, image by image, how far the proxy's severities and levels
are from the rendered ones. ``--search`` reweights a wide proxy run to narrower ranges. The
proxy is what calibrated the ``paper`` preset's trajectory ranges (docs/render.md, "The paper
preset's blur levels").
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen._blender_scripts.contract import SHARP_INSTANT  # noqa: E402
from blurgen.config.loader import resolve_config  # noqa: E402
from blurgen.render.camera import camera_of  # noqa: E402
from blurgen.render.compose import blurred_windows  # noqa: E402
from blurgen.render.config import KIND, RenderConfig  # noqa: E402
from blurgen.render.coverage import MeshCoverage  # noqa: E402
from blurgen.render.labels import blur_level  # noqa: E402
from blurgen.render.samples import judge_image  # noqa: E402
from blurgen.render.manifests import load_manifests  # noqa: E402
from blurgen.render.plan import make_plan  # noqa: E402
from blurgen.render.prepare import PreparedItem, SkipItem, prepare_item  # noqa: E402

LEVELS = np.arange(1, 11)
# Table 1 of the paper: images per blur level 1..6 of the synthetic query and database sets.
PAPER = {"query": np.array([4288, 3932, 4078, 4089, 2930, 1678]),
         "database": np.array([18871, 17508, 17888, 18029, 12546, 6779])}
ROLES = ("query", "database")


def paper_shares(role: str) -> np.ndarray:
    """Table 1's shares of levels 1..10 (zero above 6)."""
    counts = np.zeros(len(LEVELS))
    counts[:len(PAPER[role])] = PAPER[role]
    return counts / counts.sum()


def shares(levels: Sequence[int]) -> np.ndarray:
    counts = np.bincount(np.asarray(levels, dtype=np.int64) - 1, minlength=len(LEVELS))[:len(LEVELS)]
    return counts / max(1, counts.sum())


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - q).sum())


def bench_config(preset: str, objects_per_category: int, per_object: int, spp: int,
                 overrides: Sequence[str]) -> RenderConfig:
    """The preset on the demo assets, every object a test object, a sixth of the trajectories queries."""
    base = {"assets": {"objects": None, "backgrounds": None, "objects_per_category": objects_per_category},
            "trajectory": {"per_object": per_object},
            "split": {"train": 0.0, "val": 0.0, "queries_per_object": max(1, round(per_object / 6))},
            "cycles": {"samples": spp}, "farm": {"num_tasks": 1}}
    config = resolve_config(RenderConfig, KIND, preset=preset, overrides=base)
    return resolve_config(RenderConfig, KIND, preset=None, overrides=_as_nested(config, overrides))


def _as_nested(config: RenderConfig, overrides: Sequence[str]) -> dict[str, Any]:
    from blurgen.config.loader import merge, parse_overrides, to_dict
    return merge(to_dict(config), parse_overrides(overrides))


# ----------------------------------------------------------------------------- the proxy


def load_obj(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Vertices (V, 3) and triangles (F, 3) of an OBJ file (polygons fanned into triangles)."""
    vertices, triangles = [], []
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("v "):
                vertices.append([float(x) for x in line.split()[1:4]])
            elif line.startswith("f "):
                idx = [int(tok.split("/")[0]) for tok in line.split()[1:]]
                idx = [i - 1 if i > 0 else len(vertices) + i for i in idx]
                triangles.extend([idx[0], idx[j], idx[j + 1]] for j in range(1, len(idx) - 1))
    return np.asarray(vertices, np.float64), np.asarray(triangles, np.int64)


def proxy_samples(config: RenderConfig, prepared: PreparedItem, mesh: tuple[np.ndarray, np.ndarray],
                  step_px: float, supersample: int) -> Iterator[dict[str, Any]]:
    """The item's kept images as render would label them (sample order), without Blender.

    The alpha is render's own exact coverage (:class:`blurgen.render.coverage.MeshCoverage`),
    here at ``step_px`` and ``supersample``, coarser than render's for speed; the endpoint
    silhouettes of the IoU filter, which render takes from 1-spp Blender renders, are the
    coverage at that instant (read at 0.5 by the filter, as render's are).
    """
    camera = camera_of(config)
    coverage = MeshCoverage(mesh[0], mesh[1], prepared.camera_from_file, camera.intrinsics(),
                            (camera.width, camera.height), filter_width=config.cycles.pixel_filter_width,
                            supersample=supersample, step_px=step_px)
    windows = (([(-1, 0)] if config.images.sharp else [])
               + blurred_windows(config.images.max_window, config.images.windows))
    layers: dict[int, np.ndarray] = {}
    for start, count in windows:
        if count == 0:
            alpha, first, last = coverage.alpha(SHARP_INSTANT), None, None
        else:
            for j in range(start, start + count):
                if j not in layers:
                    layers[j] = coverage.alpha(float(j), float(j + 1))
            alpha = np.mean([layers[j] for j in range(start, start + count)], axis=0)
            first, last = coverage.alpha(float(start)), coverage.alpha(float(start + count))
        reason, severity = judge_image(config, alpha, first, last)  # render's own filters and labels
        if reason is None and severity is not None:
            yield {"window": (start, count), "blur_severity": severity, "blur_level": blur_level(severity),
                   "trajectory_id": prepared.item.item_id, "role": prepared.item.role,
                   **trajectory_draws(prepared)}


def trajectory_draws(prepared: PreparedItem) -> dict[str, float]:
    """The trajectory's draws that the preset's ranges bound (for reweighting in ``--search``)."""
    traj = prepared.trajectory
    return {"depth0": -traj.positions[0, 2], "depth1": -traj.positions[-1, 2], "size": traj.scale,
            "translation": float(np.linalg.norm(traj.positions[-1] - traj.positions[0])),
            "rotation_deg": math.degrees(abs(traj.angles[-1]))}


def run_proxy(config: RenderConfig, step_px: float, supersample: int) -> list[dict[str, Any]]:
    objects, backgrounds = load_manifests(config)
    plan = make_plan(config, objects, backgrounds)
    meshes: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    out = []
    for item in plan.items:
        try:
            prepared = prepare_item(config, plan, item)
        except SkipItem:
            continue
        if item.object_id not in meshes:
            meshes[item.object_id] = load_obj(plan.objects.path_of(item.object_id))
        out.extend(proxy_samples(config, prepared, meshes[item.object_id], step_px, supersample))
    return out


# ----------------------------------------------------------------------------- the real render


def run_render(config: RenderConfig, out_dir: Path) -> list[dict[str, Any]]:
    from blurgen.render.pipeline import render_dataset
    from blurgen.shards.reader import ShardDataset

    render_dataset(config, out_dir, progress=True)
    fields = ["blur_severity", "blur_level", "trajectory_id", "role", "window_start", "window_count"]
    with ShardDataset(sorted(out_dir.rglob("*.h5")), fields=fields) as ds:
        return [{"window": (int(s["window_start"]), int(s["window_count"])),
                 "blur_severity": float(s["blur_severity"]), "blur_level": int(s["blur_level"]),
                 "trajectory_id": int(s["trajectory_id"]), "role": str(s["role"])} for s in ds]



# ----------------------------------------------------------------------------- report


def bootstrap_tv(samples: list[dict[str, Any]], role: str, rounds: int, rng: np.random.Generator) -> float:
    """Standard deviation of TV over trajectory-resampled copies of the role's images."""
    by_traj: dict[int, list[int]] = {}
    for s in samples:
        if s["role"] == role:
            by_traj.setdefault(s["trajectory_id"], []).append(s["blur_level"])
    groups = list(by_traj.values())
    if len(groups) < 2:
        return float("nan")
    paper = paper_shares(role)
    tvs = []
    for _ in range(rounds):
        pick = rng.integers(len(groups), size=len(groups))
        tvs.append(total_variation(shares([lv for i in pick for lv in groups[i]]), paper))
    return float(np.std(tvs))


def report(samples: list[dict[str, Any]], rounds: int, seed: int) -> dict[str, float]:
    """Print the side-by-side table; return TV and its bootstrap std per role."""
    rng = np.random.default_rng(seed)
    measured = {r: shares([s["blur_level"] for s in samples if s["role"] == r]) for r in ROLES}
    counts = {r: sum(s["role"] == r for s in samples) for r in ROLES}
    print(f"{'level':>5} | {'paper Q':>8} {'ours Q':>8} | {'paper DB':>8} {'ours DB':>8}")
    for i, lv in enumerate(LEVELS):
        print(f"{lv:>5} | {100 * paper_shares('query')[i]:7.1f}% {100 * measured['query'][i]:7.1f}% | "
              f"{100 * paper_shares('database')[i]:7.1f}% {100 * measured['database'][i]:7.1f}%")
    result = {}
    for r in ROLES:
        tv = total_variation(measured[r], paper_shares(r))
        sd = bootstrap_tv(samples, r, rounds, rng)
        result[f"tv_{r}"], result[f"tv_{r}_sd"] = tv, sd
        print(f"{r}: {counts[r]} images, TV to Table 1 = {tv:.3f} (bootstrap sd {sd:.3f} over "
              f"{rounds} trajectory resamples)")
    return result


def compare(proxy: list[dict[str, Any]], rendered: list[dict[str, Any]]) -> None:
    """Image-by-image agreement of the proxy with the render (matched by trajectory and window)."""
    key = lambda s: (s["trajectory_id"], s["window"])  # noqa: E731
    p, r = {key(s): s for s in proxy}, {key(s): s for s in rendered}
    both = sorted(set(p) & set(r))
    d = np.array([p[k]["blur_severity"] - r[k]["blur_severity"] for k in both])
    dl = np.array([p[k]["blur_level"] - r[k]["blur_level"] for k in both])
    print(f"proxy vs render: {len(both)} images in both, {len(set(p) - set(r))} kept by the proxy only, "
          f"{len(set(r) - set(p))} by the render only; BS proxy - render: mean {d.mean():+.4f}, "
          f"mean |.| {np.abs(d).mean():.4f}, max |.| {np.abs(d).max():.4f}; levels equal "
          f"{np.mean(dl == 0):.1%}, proxy one higher {np.mean(dl == 1):.1%}, one lower {np.mean(dl == -1):.1%}")


def search(dump: Path, steps: int = 9) -> None:
    """Reweight a wide proxy run to narrower translation x rotation x size ranges; print the best.

    A trajectory of a narrower law is a trajectory of the wide one whose draws fall in the
    narrower ranges: every draw is uniform and independent, and placement keeps the first try
    whose end lands in the frustum (a conditional law), so the wide run's trajectories inside the
    ranges are an exact sample of the narrower law (depth and margin stay the run's).
    """
    rows = [json.loads(line) for line in dump.read_text(encoding="utf-8").splitlines()]
    col = {k: np.array([r[k] for r in rows]) for k in ("translation", "rotation_deg", "size",
                                                         "blur_level", "trajectory_id")}
    lv, traj = col["blur_level"], col["trajectory_id"]
    target = (paper_shares("query") + paper_shares("database")) / 2

    def intervals(values: np.ndarray, n: int) -> list[tuple[float, float]]:
        edges = np.linspace(values.min(), values.max(), n)
        return [(a, b) for i, a in enumerate(edges) for b in edges[i + 1:]]

    results = []
    for a, b in intervals(col["translation"], steps):
        in_t = (col["translation"] >= a) & (col["translation"] <= b)
        for c, d in intervals(col["rotation_deg"], steps):
            in_tr = in_t & (col["rotation_deg"] >= c) & (col["rotation_deg"] <= d)
            for e, f in intervals(col["size"], 4):
                keep = in_tr & (col["size"] >= e) & (col["size"] <= f)
                n_traj = len(np.unique(traj[keep]))
                if n_traj < 40:
                    continue
                p = shares(lv[keep])
                results.append((total_variation(p, target), total_variation(shares(lv[keep & (lv <= 6)]), target),
                                (a, b), (c, d), (e, f), n_traj, p))
    print(f"{len(rows)} proxy images of {len(np.unique(traj))} trajectories; best ranges (TV to Table 1, "
          f"pooled query + database):")
    for key, name in ((0, "as rendered"), (1, "levels > 6 dropped")):
        print(f"-- by TV {name}")
        for tv, tvc, t, r, z, n, p in sorted(results, key=lambda x: x[key])[:8]:
            print(f"translation [{t[0]:.2f}, {t[1]:.2f}] rotation [{r[0]:.0f}, {r[1]:.0f}] size "
                  f"[{z[0]:.2f}, {z[1]:.2f}]: TV {tv:.3f}, capped {tvc:.3f}, {n} trajectories, levels 1-10 % "
                  + " ".join(f"{100 * x:.0f}" for x in p))


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="paper")
    ap.add_argument("--objects-per-category", type=int, help="demo objects per category (max 5; default: "
                    "5 with --proxy, 1 when rendering)")
    ap.add_argument("--per-object", type=int, help="trajectories per object (default: 4 with --proxy, 2 "
                    "when rendering: 12 trajectories, ~3 minutes on 2 shared cores)")
    ap.add_argument("--spp", type=int, default=4,
                    help="Cycles samples per pixel (the labels come from the exact coverage, not the colours)")
    ap.add_argument("--seed", type=int, action="append", help="config seed(s); default 0")
    ap.add_argument("--set", dest="overrides", action="append", default=[], help="config override KEY=VALUE")
    ap.add_argument("--proxy", action="store_true",
                    help="label the same trajectories from the exact coverage, without Blender")
    ap.add_argument("--proxy-step-px", type=float, default=2.0,
                    help="proxy coverage: most pixels a vertex moves between instants (render: 0.5)")
    ap.add_argument("--proxy-supersample", type=int, default=2, help="proxy coverage: points per pixel "
                    "along x and y (render: 4)")
    ap.add_argument("--validate", action="store_true", help="render, and compare the proxy image by image")
    ap.add_argument("--max-level", type=int, default=10,
                    help="what-if: also report the histograms with images above this level dropped")
    ap.add_argument("--bootstrap", type=int, default=500)
    ap.add_argument("--dump", type=Path, help="write the labelled images (JSON lines) here, for --search")
    ap.add_argument("--search", type=Path, help="reweight a --dump of a wide --proxy run (see search())")
    args = ap.parse_args(argv)
    if args.objects_per_category is None:
        args.objects_per_category = 5 if args.proxy else 1
    if args.per_object is None:
        args.per_object = 4 if args.proxy else 2
    if args.search:
        search(args.search)
        return
    print(f"machine: {machine()}")
    for seed in args.seed or [0]:
        config = bench_config(args.preset, args.objects_per_category, args.per_object, args.spp,
                              [*args.overrides, f"seed={seed}"])
        t = config.trajectory
        print(f"\npreset {args.preset}, seed {seed}: {args.objects_per_category} objects x 6 categories x "
              f"{args.per_object} trajectories; depth {list(t.depth)}, object_size {list(t.object_size)}, "
              f"translation {list(t.translation)}, rotation_deg {list(t.rotation_deg)}, margin {t.margin}; "
              + ("proxy" if args.proxy else f"Blender at {args.spp} spp"))
        start = time.perf_counter()
        if args.proxy:
            samples = run_proxy(config, args.proxy_step_px, args.proxy_supersample)
        else:
            with tempfile.TemporaryDirectory(prefix="render-levels-") as tmp:
                samples = run_render(config, Path(tmp) / "out")
        print(f"{len(samples)} images in {time.perf_counter() - start:.0f} s")
        blurred = [s for s in samples if s["window"][1] > 0]
        print("blurred images (Table 1's reading: the sharp image is rendered 'additionally'):")
        report(blurred, args.bootstrap, seed)
        print("every image, the sharp ones included (all level 1):")
        report(samples, args.bootstrap, seed)
        if args.max_level < 10:
            print(f"what-if, blurred images above level {args.max_level} not kept:")
            report([s for s in blurred if s["blur_level"] <= args.max_level], args.bootstrap, seed)
        if args.dump:
            with open(args.dump, "a", encoding="utf-8") as f:
                f.writelines(json.dumps({**s, "seed": seed}) + "\n" for s in samples)
        if args.validate and not args.proxy:
            compare(run_proxy(config, args.proxy_step_px, args.proxy_supersample), samples)


if __name__ == "__main__":
    main()
