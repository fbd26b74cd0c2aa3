"""Shard write/read throughput: ``python bench/shards.py [--samples N] [--reads N]``.

Writes the same render-like samples (320x240 RGB uint8 image + float32 alpha + small fields)
with compression none, gzip and zstd, then reads them back: all fields in order in one
process, and images at random indices in one process and in worker processes (spawn, like a
DataLoader). MB/s counts the uncompressed image + alpha payload. The shards stay in the page
cache, so the read figures measure decoding, not the disk.

The content is made to compress like a real composite: smooth landscape-like gradients,
mid-frequency texture, sensor-like noise and a blurred object; alpha is zero except on a soft
blob. All-zero images would compress 100x and flatter every figure.
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import cv2
import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

import blurgen.shards.reader as shard_reader  # noqa: E402
from blurgen.shards import Schema, ShardDataset, ShardWriter, register_schema  # noqa: E402

register_schema(Schema("blurgen.bench/1", "render-like benchmark samples", fields=(), extra_fields=True))

H, W = 240, 320
DISTINCT = 64  # distinct samples generated up front, so generation is not timed with writing


def make_sample(rng: np.random.Generator) -> dict[str, Any]:
    """One render-like sample: image (H, W, 3) uint8, alpha (H, W) float32, bbox, level."""
    y, x = np.mgrid[0:H, 0:W].astype(np.float32)
    horizon = rng.uniform(0.35, 0.65) * H
    sky = np.stack([90 + 60 * y / H, 140 + 50 * y / H, 220 - 40 * y / H], axis=-1)
    ground = np.stack([70 + 40 * x / W, 110 + 30 * (y - horizon) / H, 50 + 20 * x / W], axis=-1)
    image = np.where((y < horizon)[..., None], sky, ground)
    for scale, amp in ((40, 25.0), (12, 14.0), (4, 8.0)):  # texture at a few frequencies
        low = rng.normal(0, amp, (H // scale + 2, W // scale + 2, 3)).astype(np.float32)
        image += cv2.resize(low, (W, H), interpolation=cv2.INTER_CUBIC)
    image += rng.normal(0, 2.0, (H, W, 3))  # sensor-like noise
    # a motion-blurred object: soft elliptical coverage, its own colour and texture
    cx, cy = rng.uniform(0.25, 0.75) * W, rng.uniform(0.25, 0.75) * H
    rx, ry = rng.uniform(20, 60), rng.uniform(15, 45)
    d = ((x - cx) / rx) ** 2 + ((y - cy) / ry) ** 2
    alpha = np.clip(1.5 - d, 0.0, 1.0).astype(np.float32)
    alpha = cv2.blur(alpha, (int(rng.integers(5, 25)), 1))
    alpha[alpha < 0.02] = 0.0
    colour = rng.uniform(30, 230, 3).astype(np.float32)
    obj = colour + cv2.resize(rng.normal(0, 20, (H // 6, W // 6, 3)).astype(np.float32), (W, H))
    image = image * (1 - alpha[..., None]) + obj * alpha[..., None]
    ys, xs = np.nonzero(alpha)
    bbox = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], np.int32)
    return {"image": np.clip(image, 0, 255).astype(np.uint8), "alpha": alpha, "bbox": bbox,
            "blur_level": np.int64(rng.integers(1, 11)), "blur_severity": np.float32(rng.uniform())}


def payload_bytes(sample: dict[str, Any]) -> int:
    return sample["image"].nbytes + sample["alpha"].nbytes


def write_shard(folder: Path, pool: list[dict[str, Any]], n: int, compression: str) -> float:
    """Write ``n`` samples; returns seconds (including close: fsync, sha256, manifest)."""
    t0 = time.perf_counter()
    with ShardWriter(folder, schema="blurgen.bench/1", split="train", task_index=0, num_tasks=1,
                     seed=0, config_json="{}", compression=compression) as writer:
        for i in range(n):
            writer.add({**pool[i % len(pool)], "sample_id": f"bench-{i:07d}"})
        writer.close()
    return time.perf_counter() - t0


def read_all(folder: Path) -> float:
    ds = ShardDataset(folder)
    t0 = time.perf_counter()
    for i in range(len(ds)):
        ds[i]
    dt = time.perf_counter() - t0
    ds.close()
    return dt


def read_random(folder: Path, indices: np.ndarray) -> float:
    ds = ShardDataset(folder, fields=["image"])
    ds[0]  # open outside the timing, as a long-running loader would have
    t0 = time.perf_counter()
    for i in indices:
        ds[i]
    dt = time.perf_counter() - t0
    ds.close()
    return dt


_worker_ds: ShardDataset | None = None


def _init_worker(ds: ShardDataset, use_direct: bool) -> None:
    global _worker_ds
    if not use_direct:
        shard_reader.inflate = None
    _worker_ds = ds
    ds[0]


def _read_batch(indices: np.ndarray) -> int:
    assert _worker_ds is not None
    for i in indices:
        _worker_ds[i]
    return len(indices)


def read_random_workers(folder: Path, indices: np.ndarray, workers: int, use_direct: bool) -> float:
    ds = ShardDataset(folder, fields=["image"])
    ctx = mp.get_context("spawn")
    with ctx.Pool(workers, initializer=_init_worker, initargs=(ds, use_direct)) as pool:
        pool.map(_read_batch, np.array_split(indices[:64], workers))  # both workers started and warm
        batches = np.array_split(indices, max(1, len(indices) // 32))
        t0 = time.perf_counter()
        done = sum(pool.map(_read_batch, batches, chunksize=1))
        dt = time.perf_counter() - t0
    assert done == len(indices)
    return dt


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=400, help="samples per shard (default 400)")
    parser.add_argument("--reads", type=int, default=3000, help="random image reads per figure (default 3000)")
    parser.add_argument("--workers", type=int, default=2, help="reader worker processes (default 2)")
    parser.add_argument("--dir", type=Path, help="where to write the shards (default: a temporary folder)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="random-read runs per figure; the best is shown (default 3)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    try:
        import hdf5plugin
        compressions = ["none", "gzip", "zstd"]
        plugin = f"hdf5plugin {hdf5plugin.version}"
    except ImportError:
        compressions = ["none", "gzip"]
        plugin = "no hdf5plugin (zstd skipped)"
    libdeflate = shard_reader.inflate is not None

    rng = np.random.default_rng(args.seed)
    pool = [make_sample(rng) for _ in range(min(args.samples, DISTINCT))]
    payload = payload_bytes(pool[0])
    indices = rng.integers(0, args.samples, args.reads)
    root = args.dir or Path(tempfile.mkdtemp(prefix="blurgen-bench-"))
    # a 1-minute load average well above 0 at the start means other work shares the cores
    print(f"machine: {machine()}")
    inflater = "yes" if libdeflate else "no (pip install deflate)"
    print(f"python {platform.python_version()}, numpy {np.__version__}, h5py {h5py.__version__}, "
          f"HDF5 {h5py.version.hdf5_version}, {plugin}, libdeflate {inflater}")
    print(f"{args.samples} samples per shard: image {H}x{W}x3 uint8 + alpha {H}x{W} float32 "
          f"({payload / 1e6:.3f} MB payload) + bbox, blur_level, blur_severity, sample_id; "
          f"{args.reads} random image reads, {args.workers} spawn workers")
    print()

    rows = []
    try:
        for compression in compressions:
            folder = root / compression
            shutil.rmtree(folder, ignore_errors=True)
            t_write = write_shard(folder, pool, args.samples, compression)
            size = sum(p.stat().st_size for p in folder.glob("*.h5"))
            t_all = read_all(folder)
            variants = [(compression, True)]
            if compression == "gzip" and libdeflate:
                variants = [("gzip, libdeflate", True), ("gzip, HDF5 zlib", False)]
            for label, direct in variants:
                saved, shard_reader.inflate = shard_reader.inflate, (shard_reader.inflate if direct else None)
                try:  # best of --repeat: other processes on a small machine only ever slow a run down
                    t_rand = min(read_random(folder, indices) for _ in range(args.repeat))
                finally:
                    shard_reader.inflate = saved
                t_workers = min(read_random_workers(folder, indices, args.workers, direct)
                                for _ in range(args.repeat))
                n = args.samples
                rows.append([label, f"{size / (n * payload):.3f}",
                             f"{n * payload / t_write / 1e6:.0f}", f"{n / t_write:.0f}",
                             f"{n * payload / t_all / 1e6:.0f}", f"{n / t_all:.0f}",
                             f"{args.reads / t_rand:.0f}", f"{args.reads / t_workers:.0f}"])
                print(f"  {label}: done", file=sys.stderr)
    finally:
        if args.dir is None:
            shutil.rmtree(root, ignore_errors=True)

    header = ["compression", "size/payload", "write MB/s", "write samples/s", "read-all MB/s",
              "read-all samples/s", "rand image/s 1 proc", f"rand image/s {args.workers} workers"]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for r in [header, ["-" * w for w in widths], *rows]:
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))


if __name__ == "__main__":
    main()
