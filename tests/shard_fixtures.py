"""Helpers for the shard tests: the ``blurgen.test/1`` schema, small deterministic samples, shard
writing, byte flipping, and the functions worker processes run (they must live in an importable
module for spawn).

``blurgen.test/1`` declares no fields and takes any (``extra_fields``): the writer then only asks
that every sample of a shard agree with the first, so these tests exercise storage, not a
generator's table. Test files that write ``blurgen.test/1`` shards import this module."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from blurgen.shards import Schema, ShardDataset, ShardWriter, register_schema
from blurgen.shards.manifest import make_entry, update_manifest

TEST_SCHEMA = register_schema(Schema("blurgen.test/1", "any fields, fixed by a shard's first sample",
                                     fields=(), extra_fields=True))

H, W = 24, 32
CONFIG = {"render": {"width": W, "height": H, "spp": 4}, "seed": 7, "marker": "CONFIG-MARKER-0123456789"}


def sample(i: int, *, prefix: str = "s") -> dict[str, Any]:
    """A render-like sample whose content depends only on ``i``."""
    rng = np.random.default_rng(i)
    return {
        "image": rng.integers(0, 256, (H, W, 3), dtype=np.uint8),
        "alpha": rng.random((H, W), dtype=np.float32),
        "blur_level": np.int64(i % 10 + 1),
        "blur_severity": np.float32(rng.random()),
        "bbox": np.array([1, 2, 3 + i, 4 + i], np.int32),
        "sample_id": f"{prefix}-{i:05d}",
    }


def write_shard(folder: Path, ids: range | list[int], *, split: str = "train", task_index: int = 0,
                num_tasks: int = 1, compression: str = "gzip", stats: dict | None = None,
                **kwargs: Any) -> dict[str, Any]:
    """Write samples ``sample(i) for i in ids`` as one shard; returns its manifest entry."""
    with ShardWriter(folder, schema="blurgen.test/1", split=split, task_index=task_index,
                     num_tasks=num_tasks, seed=7, config_json=json.dumps(CONFIG),
                     compression=compression, **kwargs) as writer:
        for i in ids:
            writer.add(sample(i))
        return writer.close(stats=stats)


def flip_byte(path: Path, offset: int) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x5A]))


def chunk_span(path: Path, dataset: str, index: int) -> tuple[int, int]:
    """File offset and stored size of chunk ``index`` (one sample) of ``dataset``."""
    with h5py.File(path, "r") as f:
        info = f[dataset].id.get_chunk_info_by_coord((index,) + (0,) * (f[dataset].ndim - 1))
        return info.byte_offset, info.size


def chunk_byte_offset(path: Path, dataset: str, index: int) -> int:
    """File offset of the middle of chunk ``index`` (one sample) of ``dataset``."""
    offset, size = chunk_span(path, dataset, index)
    return offset + size // 2


def open_file_count() -> int:
    """HDF5 files open in this process (h5py's own count, so it sees every handle)."""
    return h5py.h5f.get_obj_count(h5py.h5f.OBJ_ALL, h5py.h5f.OBJ_FILE)


# ----------------------------------------------------------------- run in worker processes

def read_item(ds: ShardDataset, index: int) -> tuple[int, str, int, int]:
    """What a worker sees at ``index``: (pid, sample_id, image checksum, files open before)."""
    before = open_file_count()
    item = ds[index]
    return os.getpid(), item["sample_id"], int(item["image"].astype(np.int64).sum()), before


def add_entries(folder: str, worker: int, count: int) -> None:
    """Add ``count`` synthetic entries to the manifest, as concurrent farm tasks would."""
    for k in range(count):
        name = f"w{worker}-{k:03d}.h5"
        update_manifest(folder, make_entry(name, schema="blurgen.test/1", split="train",
                                           task_index=k, num_tasks=count, samples=worker + 1,
                                           nbytes=100, sha256="0" * 64, blur_levels={"2": worker + 1}))


def write_and_hang(folder: str, ready: str, count: int) -> None:
    """Write ``count`` samples, signal through the file ``ready``, then wait to be killed."""
    with ShardWriter(folder, schema="blurgen.test/1", split="train", task_index=1, num_tasks=2,
                     seed=7, config_json=json.dumps(CONFIG)) as writer:
        for i in range(count):
            writer.add(sample(i))
        Path(ready).write_text("written")
        time.sleep(60)
        writer.close()


def samples_by_id(folder: Path) -> dict[str, dict]:
    """Every sample of a folder of shards, by sample_id."""
    return {s["sample_id"]: s for s in ShardDataset(folder)}


def assert_same_samples(a: dict[str, dict], b: dict[str, dict]) -> None:
    """Two folders hold the same samples, field for field, bit for bit."""
    assert sorted(a) == sorted(b) and a
    for sample_id, sample in a.items():
        for field, value in sample.items():
            assert np.array_equal(np.asarray(value), np.asarray(b[sample_id][field])), (sample_id, field)


def assert_same_shard_bytes(a: Path, b: Path) -> None:
    """Two folders hold the same shard files, byte for byte."""
    names = sorted(p.name for p in a.glob("*.h5"))
    assert names and names == sorted(p.name for p in b.glob("*.h5"))
    for name in names:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
