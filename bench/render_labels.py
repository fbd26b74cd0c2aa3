"""Exact-coverage labels against 256 spp, and image quality and speed at 8 and 16 spp.

``python bench/render_labels.py [--every 4] [--spp 8 16] [--ref-spp 256 [1024 ...]] [--psnr-ref-spp 1024]``

On a subset of the demo preset's trajectories (every ``--every``-th of its plan, named in the
output), in one run:

1. Labels. Blender renders the trajectories as ``blurgen render`` does (the centred windows'
   sub-intervals, the sharp frame, the silhouettes, the mesh's triangles) at each colour spp S
   (``--spp``) and at ``--ref-spp``. blurgen's own code (``render.samples.item_samples``) labels
   every image twice: from the exact coverage (``labels.coverage: exact``, the default) and from
   the colour renders' alpha (``render``, the old way). The reference is the old way at
   ``--ref-spp``. Printed: mean and largest |dBS|, mean dBS, and the images whose level changes.
   With several ``--ref-spp``, the same table against each: whether the exact labels' distance
   to the reference shrinks as the reference's own sampling noise does.
2. Cost. Cycles' wall time inside its render calls, the Blender processes' CPU time (start-up
   included), and the parent's CPU time for the exact coverage; images per CPU-second and the
   CPU-core-hours the paper's 1.5 million images would take at that rate.
3. Quality. The k = 1 image (the centred sub-interval: the noisiest blurred image) composited
   over its background as the shard stores it (sRGB uint8), against the same sub-interval
   rendered at ``--psnr-ref-spp``: PSNR over the whole image and over the object's box.
"""

from __future__ import annotations

import argparse
import dataclasses
import resource
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from blurgen.color import linear_to_srgb_uint8  # noqa: E402
from blurgen.config import resolve_config  # noqa: E402
from blurgen.render.blender import RenderedItem, blender_job, render_batch  # noqa: E402
from blurgen.render.compose import composite  # noqa: E402
from blurgen.render.config import RenderConfig  # noqa: E402
from blurgen.render.manifests import load_manifests  # noqa: E402
from blurgen.render.plan import make_plan  # noqa: E402
from blurgen.render.prepare import prepare_item  # noqa: E402
from blurgen.render.samples import item_samples  # noqa: E402

PAPER_IMAGES = 1_500_000


def with_cycles(config: RenderConfig, **fields) -> RenderConfig:
    return dataclasses.replace(config, cycles=dataclasses.replace(config.cycles, **fields))


def render(config: RenderConfig, plan, prepared, work: Path, tag: str, *, edit=None,
           cache: Path | None = None) -> tuple[list[dict], float]:
    """One Blender process over the prepared items: (arrays per item, child CPU seconds).

    With ``cache``, the arrays and the CPU time are kept there under ``tag`` and read back on a
    rerun (only the parent's label code is then timed again).
    """
    if cache is not None and (cache / f"{tag}.npz").exists():
        with np.load(cache / f"{tag}.npz") as data:
            n = int(data["n"])
            return [{k.split("/", 1)[1]: data[k] for k in data.files if k.startswith(f"{i}/")}
                    for i in range(n)], float(data["cpu"])
    job = blender_job(config, plan, prepared, work / tag, threads=0)
    if edit is not None:
        edit(job)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    results = render_batch(job, work / f"{tag}-work", timeout_s=3600)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    bad = [r for r in results.values() if not isinstance(r, RenderedItem)]
    if bad:
        raise SystemExit(f"render failed: {bad}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    arrays = [results[p.item.item_id].load() for p in prepared]
    if cache is not None:
        cache.mkdir(parents=True, exist_ok=True)
        np.savez(cache / f"{tag}.npz", n=len(arrays), cpu=cpu,
                 **{f"{i}/{k}": v for i, a in enumerate(arrays) for k, v in a.items()})
    return arrays, cpu


def labels(config: RenderConfig, prepared, rendered: list[dict]) -> tuple[dict[str, tuple[float, int]], float]:
    """sample_id -> (blur severity, blur level) of the images the filters keep; CPU seconds taken."""
    out, started = {}, time.process_time()
    for p, arrays in zip(prepared, rendered):
        for sample in item_samples(config, p, arrays, Counter()):
            out[sample["sample_id"]] = (float(sample["blur_severity"]), int(sample["blur_level"]))
    return out, time.process_time() - started


def compare(name: str, got: dict, ref: dict) -> str:
    common = sorted(set(got) & set(ref))
    if not common:
        return f"  {name:<30} no image kept in both ({len(got)} here, {len(ref)} in the reference)"
    d = np.array([got[s][0] - ref[s][0] for s in common])
    moved = [f"{s.split('-t')[1]}: {ref[s][1]}->{got[s][1]} ({ref[s][0]:.4f}->{got[s][0]:.4f})"
             for s in common if got[s][1] != ref[s][1]]
    kept = f"{len(common)} images" + (f" ({len(got) - len(common)} only here, {len(ref) - len(common)} "
                                      "only in the reference)" if len(common) != max(len(got), len(ref)) else "")
    return (f"  {name:<30} mean|dBS| {np.abs(d).mean():.4f}  max|dBS| {np.abs(d).max():.4f}  "
            f"mean dBS {d.mean():+.4f}  level changes {len(moved)}/{len(common)}  [{kept}]"
            + (f"\n      {'; '.join(moved)}" if moved else ""))


def k1_image(p, arrays: dict) -> np.ndarray:
    """The composited sRGB image of the centred k = 1 window from an item's arrays."""
    first = int(arrays["layer_indices"][0])
    layer = arrays["layers"][(23 - 1) // 2 - first]
    return linear_to_srgb_uint8(composite(layer, p.background_linear))


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255.0 ** 2 / mse)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--every", type=int, default=4, help="every k-th trajectory of the demo plan")
    ap.add_argument("--limit", type=int, default=0, help="at most this many trajectories (0: all picked)")
    ap.add_argument("--spp", type=int, nargs="+", default=[8, 16], help="colour spp under test")
    ap.add_argument("--ref-spp", type=int, nargs="+", default=[256], help="references (colour alpha)")
    ap.add_argument("--psnr-ref-spp", type=int, default=1024, help="0 skips the PSNR part")
    ap.add_argument("--cache", type=Path, default=None, help="keep the renders here and reuse them")
    ap.add_argument("--set", action="append", default=[], help="config overrides (e.g. camera.width=96)")
    args = ap.parse_args(argv)

    config = resolve_config(RenderConfig, "render", preset="demo", overrides=args.set)
    objects, backgrounds = load_manifests(config)
    plan = make_plan(config, objects, backgrounds)
    picked = plan.items[::args.every][:args.limit or None]
    prepared = [prepare_item(config, plan, item) for item in picked]
    print(f"machine: {machine()}")
    print(f"demo preset, {config.camera.width}x{config.camera.height}, trajectories "
          f"{[p.item.item_id for p in prepared]} (every {args.every}-th of {len(plan.items)})")
    exact = dataclasses.replace(config, labels=dataclasses.replace(config.labels, coverage="exact"))
    old_way = dataclasses.replace(config, labels=dataclasses.replace(config.labels, coverage="render"))

    with tempfile.TemporaryDirectory(prefix="bench-labels-") as tmp:
        work = Path(tmp)
        runs = {}
        for spp in sorted({*args.ref_spp, *args.spp}):
            cfg = with_cycles(exact, samples=spp)
            rendered, cpu = render(cfg, plan, prepared, work, f"s{spp}", cache=args.cache)
            runs[spp] = (rendered, cpu)
        exact_cpu = {}
        for ref_spp in args.ref_spp:
            ref, _ = labels(old_way, prepared, runs[ref_spp][0])
            print(f"\nLabels against the colour alpha at {ref_spp} spp ({len(ref)} images kept)")
            for spp in sorted({*args.spp, *args.ref_spp}):
                rendered = runs[spp][0]
                if spp != ref_spp:
                    print(compare(f"{spp} spp, colour alpha (old)", labels(old_way, prepared, rendered)[0], ref))
                if spp in args.spp or spp == ref_spp:
                    got, exact_cpu[spp] = labels(exact, prepared, rendered)
                    print(compare(f"{spp} spp, exact coverage (new)", got, ref))

        def nothing(job):  # Blender's start-up and the mesh imports: what a batch pays once
            for item in job["items"]:
                item["renders"] = {"sub_intervals": [], "sharp": False, "silhouettes": False, "mesh": True}
        _, startup = render(exact, plan, prepared, work, "startup", edit=nothing)
        print(f"\nCost (Cycles: wall time inside its render calls; CPU: the Blender process, whose start-up "
              f"and imports, {startup:.1f} CPU-s here, a production batch of 24 trajectories spreads; "
              "+ the parent's exact coverage)")
        for spp in args.spp:
            rendered, cpu = runs[spp]
            n = len(labels(exact, prepared, rendered)[0])
            cycles = sum(float(a["cycles_seconds"]) for a in rendered)
            rate = n / (cpu - startup + exact_cpu[spp])
            print(f"  {spp:>4} spp: Cycles {cycles:6.1f} s; {n} images: Blender {cpu:.1f} CPU-s "
                  f"({cpu - startup:.1f} without start-up) + exact coverage {exact_cpu[spp]:.1f} CPU-s "
                  f"(+{100 * exact_cpu[spp] / (cpu - startup):.0f} % of Blender's rendering) -> "
                  f"{rate:.2f} images per CPU-second without start-up = {PAPER_IMAGES / rate / 3600:.0f} "
                  f"CPU-core-hours for {PAPER_IMAGES / 1e6:.1f} M images (with the labels from the "
                  f"colour alpha: {n / (cpu - startup) :.2f} images per CPU-second)")

        if args.psnr_ref_spp:
            def k1_only(job):
                for item in job["items"]:
                    item["renders"] = {"sub_intervals": [11], "sharp": False, "silhouettes": False}
            cfg = with_cycles(old_way, samples=args.psnr_ref_spp)
            best, _ = render(cfg, plan, prepared, work, f"k1-s{args.psnr_ref_spp}", edit=k1_only, cache=args.cache)
            print(f"\nPSNR of the k = 1 image (sRGB uint8, composited) against {args.psnr_ref_spp} spp")
            for spp in args.spp:
                whole, boxed = [], []
                for p, a, b in zip(prepared, runs[spp][0], best):
                    img, ref_img = k1_image(p, a), k1_image(p, b)
                    whole.append(psnr(img, ref_img))
                    ys, xs = np.nonzero(b["layers"][0][..., 3] > 0)
                    box = np.s_[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
                    boxed.append(psnr(img[box], ref_img[box]))
                print(f"  {spp:>4} spp: whole image {np.mean(whole):.1f} dB (min {np.min(whole):.1f}), "
                      f"object's box {np.mean(boxed):.1f} dB (min {np.min(boxed):.1f})")


if __name__ == "__main__":
    main()
