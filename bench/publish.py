"""What publishing costs: ``python bench/publish.py [--shards N] [--per-shard N]``.

Writes a render-schema job of realistic 320x240 samples (bench/shards.py's landscape-like images
and soft alpha; the test fixtures fill the other declared fields), then times ``verify_dir`` on
it alone and ``blurgen.shards.publish.publish`` with hard links and with copies, and prints the
split of a publish into verification and the rest (card, previews, Croissant, SHA256SUMS).
Everything stays in the page cache, so the figures measure hashing, decoding and drawing, not
the disk.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent / "tests"))
from machine import machine  # noqa: E402
from release_fixtures import schema_sample  # noqa: E402
from shards import make_sample  # noqa: E402

from blurgen.shards import ShardWriter, verify_dir  # noqa: E402
from blurgen.shards.publish import publish  # noqa: E402
from blurgen.shards.publish_config import PublishConfig  # noqa: E402

SPLITS = ("train", "train", "val", "test")
DISTINCT = 32


def write_job(folder: Path, shards: int, per_shard: int) -> int:
    """``shards`` shards of ``per_shard`` samples; returns the bytes written."""
    rng = np.random.default_rng(0)
    pool = [make_sample(rng) for _ in range(DISTINCT)]
    config = json.dumps({"seed": 0, "cycles": {"samples": 16}, "assets": {"objects": None, "backgrounds": None}})
    for k in range(shards):
        split = SPLITS[k % len(SPLITS)]
        with ShardWriter(folder, schema="blurgen.render/1", split=split, task_index=k, num_tasks=shards,
                         seed=0, config_json=config) as writer:
            for j in range(per_shard):
                i = k * per_shard + j
                base = pool[i % DISTINCT]
                role = "" if split != "test" else ("query" if i % 5 == 0 else "database")
                writer.add(schema_sample("blurgen.render/1", i, {
                    "image": base["image"], "alpha": base["alpha"], "bbox": base["bbox"],
                    "blur_level": np.int8(i % 6 + 1), "blur_severity": np.float32((i % 6 + 0.5) / 10),
                    "sample_id": f"render-s0-t{i // 10}-{i:07d}", "trajectory_id": np.int64(i // 10),
                    "object_id": f"o{i // 100}", "split": split, "role": role}))
            writer.close(stats={"dropped": {"small": 1}})
    return sum(p.stat().st_size for p in folder.glob("*.h5"))


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shards", type=int, default=4)
    parser.add_argument("--per-shard", type=int, default=250)
    args = parser.parse_args(argv)
    print(machine())
    work = Path(tempfile.mkdtemp(prefix="bench-publish-"))
    try:
        job = work / "job"
        t_write = time.perf_counter()
        nbytes = write_job(job, args.shards, args.per_shard)
        t_write = time.perf_counter() - t_write
        n = args.shards * args.per_shard
        print(f"job: {n} samples 320x240 in {args.shards} shards, {nbytes / 2**20:.1f} MiB "
              f"(written in {t_write:.1f} s)")
        t_verify = timed(lambda: verify_dir(job))
        config = PublishConfig(license="CC-BY-4.0")
        t_link = timed(lambda: publish([job], work / "linked", config, progress=False))
        t_copy = timed(lambda: publish([job], work / "copied", PublishConfig(license="CC-BY-4.0", link=False),
                                       progress=False))
        print(f"verify_dir alone:     {t_verify:6.2f} s  {n / t_verify:7.0f} samples/s  "
              f"{nbytes / 2**20 / t_verify:6.1f} MiB/s")
        print(f"publish, hard links:  {t_link:6.2f} s  (verification {t_verify / t_link:.0%} of it; "
              f"the rest {t_link - t_verify:.2f} s: card, previews, Croissant, sums)")
        print(f"publish, copies:      {t_copy:6.2f} s  (+{t_copy - t_link:.2f} s to copy and re-hash "
              f"{nbytes / 2**20:.1f} MiB)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
