"""What boxing meshes costs the scanners: ``python bench/mesh_scan.py [--vertices N] [--runs N]``.

Writes, in a temporary folder, an OBJ with ShapeNet's mix of lines (``v``, ``vt``, then twice as
many ``f``) and a UV sphere of about the same vertex count as GLB, binary PLY and ASCII PLY, then
times, from the page cache: ``count_obj`` with its bounds against counting alone (the bounds
switched off), ``gltf_stats`` and ``ply_stats``. Prints the median and range of ``--runs`` runs.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
import mesh_fixtures  # noqa: E402
from machine import machine  # noqa: E402

from blurgen.assets import obj_stats  # noqa: E402
from blurgen.assets.gltf_stats import gltf_stats  # noqa: E402
from blurgen.assets.ply_stats import ply_stats  # noqa: E402


def timed(function: Callable[[], object], runs: int) -> list[float]:
    function()  # into the page cache
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times


def row(name: str, path: Path, vertices: int, times: list[float]) -> str:
    mb = path.stat().st_size / 1e6
    med = statistics.median(times)
    return (f"| {name} | {mb:.1f} MB | {med * 1e3:.0f} ms | {mb / med:.0f} MB/s ({mb / max(times):.0f}-"
            f"{mb / min(times):.0f}) | {vertices / med / 1e6:.2f} M/s |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vertices", type=int, default=300_000)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(machine())
    rng = np.random.default_rng(0)
    n = args.vertices
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        obj = folder / "mix.obj"
        with open(obj, "w") as fh:
            fh.write("mtllib model_normalized.mtl\n")
            fh.write("".join("v %.6f %.6f %.6f\n" % tuple(p) for p in rng.normal(scale=0.3, size=(n, 3))))
            fh.write("".join("vt %.6f %.6f\n" % tuple(p) for p in rng.random((n, 2))))
            fh.write("usemtl m\n")
            fh.write("".join(f"f {i}/{i} {i + 1}/{i + 1} {i + 2}/{i + 2}\n" for i in range(1, 2 * n)))
        side = int(math.sqrt(n / 2))  # a sphere of side x 2 side vertices
        mesh_fixtures.LONGITUDES, mesh_fixtures.LATITUDES = 2 * side, side
        v, uv, tris = mesh_fixtures.sphere(0.5, (3.0, 2.0, 1.0))
        glb = mesh_fixtures.write_gltf(folder / "s.glb", v, uv, tris, texture=False)
        ply = mesh_fixtures.write_ply(folder / "s.ply", v, tris)
        ply_text = mesh_fixtures.write_ply(folder / "t.ply", v, tris, binary=False)

        print("| file | size | median | rate (range) | vertices |")
        print("|---|---:|---:|---:|---:|")
        print(row("OBJ, count + bounds", obj, n, timed(lambda: obj_stats.count_obj(obj), args.runs)))
        feed = obj_stats._VertexBox.feed
        obj_stats._VertexBox.feed = lambda self, piece: None  # counting alone, as before bounds
        try:
            print(row("OBJ, counting alone", obj, n, timed(lambda: obj_stats.count_obj(obj), args.runs)))
        finally:
            obj_stats._VertexBox.feed = feed
        print(row("GLB", glb, len(v), timed(lambda: gltf_stats(glb), args.runs)))
        print(row("PLY, binary", ply, len(v), timed(lambda: ply_stats(ply), args.runs)))
        print(row("PLY, ASCII", ply_text, len(v), timed(lambda: ply_stats(ply_text), args.runs)))


if __name__ == "__main__":
    main()
