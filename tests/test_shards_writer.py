"""ShardWriter: round trips, refusals, atomic publication, determinism, filters."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import signal
import socket
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import h5py
import numpy as np
import pytest
import shard_fixtures as fx

from blurgen import __version__
from blurgen.errors import BlurgenError, ShardError
from blurgen.shards import ShardDataset, ShardWriter, read_manifest, shard_filename
from blurgen.shards.manifest import MANIFEST_NAME

DTYPES = [np.uint8, np.uint16, np.int32, np.int64, np.float16, np.float32, np.float64, np.bool_]


def _typed(rng: np.random.Generator, dtype: type, shape: tuple[int, ...]) -> np.ndarray:
    if dtype is np.bool_:
        return rng.random(shape) < 0.5
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, shape, dtype=dtype, endpoint=True)
    return (rng.standard_normal(shape) * 1000).astype(dtype)


def _every_dtype_sample(i: int) -> dict:
    rng = np.random.default_rng(100 + i)
    s: dict = {}
    for dtype in DTYPES:
        name = np.dtype(dtype).name
        s[f"big_{name}"] = _typed(rng, dtype, (16, 130))       # >= 1 KiB: one chunk per sample
        s[f"small_{name}"] = _typed(rng, dtype, (3,))          # buffered
        s[f"scalar_{name}"] = _typed(rng, dtype, ())[()]       # numpy scalar
    s.update(py_int=i * 3 - 7, py_float=i / 3, py_bool=bool(i % 2),
             text=f"échantillon-{i}-✓" * (i + 1), sample_id=f"id-{i}")
    return s


def _writer(folder: Path, **kwargs) -> ShardWriter:
    args = dict(schema="blurgen.test/1", split="train", task_index=0, num_tasks=1, seed=7,
                config_json=json.dumps(fx.CONFIG))
    return ShardWriter(folder, **{**args, **kwargs})


def test_round_trip_of_every_dtype(tmp_path):
    samples = [_every_dtype_sample(i) for i in range(4)]
    with _writer(tmp_path) as w:
        for s in samples:
            w.add(s)
        entry = w.close()
    assert entry["samples"] == 4
    ds = ShardDataset(tmp_path)
    assert len(ds) == 4 and set(ds.fields) == set(samples[0])
    for i, expected in enumerate(samples):
        got = ds[i]
        for key, value in expected.items():
            if isinstance(value, str):
                assert type(got[key]) is str and got[key] == value, key
            else:
                value = np.asarray(value)
                assert np.asarray(got[key]).dtype == value.dtype, key
                assert np.array_equal(got[key], value), key
        assert isinstance(got["scalar_float16"], np.float16)
        assert isinstance(got["py_int"], np.int64) and got["py_int"] == i * 3 - 7
    ds.close()
    with h5py.File(w.path, "r") as f:  # the chunking rule: big fields per sample, small ones together
        assert f["big_uint8"].chunks == (1, 16, 130) and f["big_float64"].chunks == (1, 16, 130)
        assert f["small_int32"].chunks == (4, 3) and f["scalar_bool"].chunks == (4,)
        assert h5py.check_string_dtype(f["text"].dtype).encoding == "utf-8"
        assert f["text"].dtype.kind == "S"  # fixed length: compressed and checksummed like the rest


def test_root_attributes(tmp_path):
    entry = fx.write_shard(tmp_path, range(3), split="val", task_index=2, num_tasks=5,
                           stats={"dropped": {"coverage": 4, "iou": np.int64(1)}})
    path = tmp_path / "val-00002-of-00005.h5"
    assert entry["file"] == path.name == shard_filename("val", 2, 5)
    with h5py.File(path, "r") as f:
        a = dict(f.attrs)
    assert a["schema"] == "blurgen.test/1" and a["blurgen_version"] == __version__
    assert json.loads(a["config"]) == fx.CONFIG
    assert (a["seed"], a["task_index"], a["num_tasks"], a["split"], a["num_samples"]) == (7, 2, 5, "val", 3)
    assert json.loads(a["stats"]) == {"dropped": {"coverage": 4, "iou": 1}}
    assert a["created_by"].startswith(f"blurgen {__version__}")


def test_filters_on_every_dataset(tmp_path):
    fx.write_shard(tmp_path / "g", range(3))
    fx.write_shard(tmp_path / "n", range(3), compression="none")
    fx.write_shard(tmp_path / "g9", range(3), compression_level=9)
    for folder, compression, opts in (("g", "gzip", 4), ("n", None, None), ("g9", "gzip", 9)):
        with h5py.File(tmp_path / folder / "train-00000-of-00001.h5", "r") as f:
            for name, dset in f.items():
                assert dset.fletcher32, name
                assert (dset.compression, dset.compression_opts) == (compression, opts), name
                assert dset.shuffle == (compression is not None), name


def test_same_inputs_give_byte_identical_files(tmp_path):
    a = fx.write_shard(tmp_path / "a", range(6), stats={"dropped": {"x": 1}})
    time.sleep(1.1)  # HDF5 timestamps have 1 s resolution: a stored time would now differ
    b = fx.write_shard(tmp_path / "b", range(6), stats={"dropped": {"x": 1}})
    name = a["file"]
    assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
    assert a == b
    assert (tmp_path / "a" / MANIFEST_NAME).read_bytes() == (tmp_path / "b" / MANIFEST_NAME).read_bytes()


@pytest.mark.parametrize("change, key, words", [
    (lambda s: s.pop("bbox"), "bbox", "missing"),
    (lambda s: s.update(extra=np.zeros(3)), "extra", "not in the first sample"),
    (lambda s: s.update(image=np.zeros((fx.H, fx.W + 1, 3), np.uint8)), "image", "shape"),
    (lambda s: s.update(alpha=s["alpha"].astype(np.float64)), "alpha", "float64"),
    (lambda s: s.update(blur_level=np.int32(3)), "blur_level", "int32"),
    (lambda s: s.update(sample_id=np.array([1, 2])), "sample_id", "str"),
])
def test_mismatched_samples_are_refused_naming_the_key(tmp_path, change, key, words):
    with _writer(tmp_path) as w:
        w.add(fx.sample(0))
        bad = fx.sample(1)
        change(bad)
        with pytest.raises(ShardError, match=f"'{key}'") as err:
            w.add(bad)
        assert words in str(err.value)
        w.add(fx.sample(2))  # a refused sample writes nothing: the fields stay aligned
        entry = w.close()
    assert entry["samples"] == 2
    assert [item["sample_id"] for item in ShardDataset(tmp_path)] == ["s-00000", "s-00002"]


@pytest.mark.parametrize("value, words", [
    (np.array([1 + 2j]), "complex"), (b"raw", "bytes"), ("a\x00b", "NUL"), (np.array(["x"]), "<U1"),
])
def test_unsupported_values_are_refused(tmp_path, value, words):
    with _writer(tmp_path) as w:
        with pytest.raises(ShardError, match=words):
            w.add({"field": value})
        w.abort()


def test_bad_field_name_and_duplicate_sample_id(tmp_path):
    with _writer(tmp_path) as w:
        with pytest.raises(ShardError, match="field name"):
            w.add({"image": fx.sample(0)["image"], "a/b": 1})
        with pytest.raises(ShardError, match="empty dimension"):
            w.add({"boxes": np.zeros((0, 4))})
        with pytest.raises(ShardError, match="at least one field"):
            w.add({})
        w.add(fx.sample(0))  # the refused first sample created no dataset
        assert w.close()["samples"] == 1
    with _writer(tmp_path / "dup") as w:
        w.add(fx.sample(0))
        with pytest.raises(ShardError, match="sample_id 's-00000' is already"):
            w.add(fx.sample(0))
        w.abort()


@pytest.mark.parametrize("kwargs, words", [
    ({"split": "tr ain"}, "split"), ({"task_index": 3, "num_tasks": 3}, "task index"),
    ({"compression": "lz4"}, "unknown compression"), ({"compression_level": 12}, "0..9"),
    ({"compression": "none", "compression_level": 1}, "no compression level"),
    ({"config_json": "{not json"}, "JSON"), ({"schema": "render"}, "schema"),
])
def test_bad_writer_arguments(tmp_path, kwargs, words):
    with pytest.raises(BlurgenError, match=words):
        _writer(tmp_path, **kwargs)
    assert not any(tmp_path.iterdir())  # refused before creating anything


def test_exception_inside_with_leaves_no_shard_and_manifest_untouched(tmp_path):
    fx.write_shard(tmp_path, range(3), task_index=0, num_tasks=2)
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    with pytest.raises(RuntimeError, match="generator failed"):
        with _writer(tmp_path, task_index=1, num_tasks=2) as w:
            for i in range(5):
                w.add(fx.sample(i))
            raise RuntimeError("generator failed")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".manifest.lock", MANIFEST_NAME,
                                                         "train-00000-of-00002.h5"]
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    with pytest.raises(ShardError, match="closed"):
        w.add(fx.sample(9))


def test_killed_writer_leaves_only_a_hidden_temp(tmp_path):
    fx.write_shard(tmp_path, range(3), task_index=0, num_tasks=2)
    before = (tmp_path / MANIFEST_NAME).read_bytes()
    ready = tmp_path.parent / f"{tmp_path.name}-ready"
    proc = mp.get_context("spawn").Process(target=fx.write_and_hang, args=(str(tmp_path), str(ready), 4))
    proc.start()
    try:
        deadline = time.monotonic() + 20
        while not ready.exists() and time.monotonic() < deadline and proc.is_alive():
            time.sleep(0.02)
        assert ready.exists(), "writer process did not start writing"
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    finally:
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == -signal.SIGKILL
    final = tmp_path / "train-00001-of-00002.h5"
    (temp,) = tmp_path.glob(".train-00001-of-00002.h5.*.tmp")  # named after its host and process
    assert not final.exists() and temp.stat().st_size > 0
    assert sorted(p.name for p in tmp_path.glob("*.h5")) == ["train-00000-of-00002.h5"]
    assert (tmp_path / MANIFEST_NAME).read_bytes() == before
    assert len(ShardDataset(tmp_path)) == 3  # readers see only the finished shard
    # Running the task again replaces the stale temp and publishes the shard.
    entry = fx.write_shard(tmp_path, range(10, 12), task_index=1, num_tasks=2)
    assert not temp.exists() and entry["samples"] == 2
    assert [e["file"] for e in read_manifest(tmp_path)["shards"]] == ["train-00000-of-00002.h5", final.name]


def test_stale_temp_is_removed_when_a_writer_starts_but_a_live_writers_is_kept(tmp_path):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    host = socket.gethostname()
    stale = tmp_path / f".train-00000-of-00001.h5.{host}-{dead.pid}.tmp"
    stale.write_bytes(b"left over by a killed task" * 1000)
    live = tmp_path / f".train-00000-of-00001.h5.{host}-{os.getppid()}.tmp"  # a running process
    live.write_bytes(b"another attempt, still writing")
    elsewhere = tmp_path / f".train-00000-of-00001.h5.otherhost-{dead.pid}.tmp"
    elsewhere.write_bytes(b"another node's attempt")
    w = _writer(tmp_path)
    assert not stale.exists() and live.exists() and elsewhere.exists()
    (mine,) = set(tmp_path.glob(".train-00000-of-00001.h5.*.tmp")) - {live, elsewhere}
    assert h5py.is_hdf5(mine) and mine.name.endswith(f"{host}-{os.getpid()}.tmp")
    w.abort()
    assert not mine.exists() and not (tmp_path / MANIFEST_NAME).exists()


def test_large_fields_are_written_as_they_arrive(tmp_path):
    rng = np.random.default_rng(0)
    n, shape = 80, (128, 128, 4)  # 64 KiB per sample, 5 MiB in all
    tracemalloc.start()
    try:
        with _writer(tmp_path) as w:
            for i in range(n):
                w.add({"image": rng.integers(0, 256, shape, dtype=np.uint8), "sample_id": f"m{i}"})
            _, peak = tracemalloc.get_traced_memory()
            w.close()
    finally:
        tracemalloc.stop()
    assert peak < 1.5 * 2**20, f"writer held {peak} bytes: images are buffered"
    with h5py.File(w.path, "r") as f:
        assert f["image"].shape == (n, *shape) and f["image"].chunks == (1, *shape)


def test_empty_shard(tmp_path):
    entry = fx.write_shard(tmp_path, [])
    assert entry["samples"] == 0 and "blur_levels" not in entry
    assert read_manifest(tmp_path)["totals"]["samples"] == 0
    ds = ShardDataset(tmp_path)
    assert len(ds) == 0 and ds.fields == ()


def test_zstd_round_trip(tmp_path):
    pytest.importorskip("hdf5plugin", reason="hdf5plugin not installed: zstd unavailable")
    fx.write_shard(tmp_path, range(5), compression="zstd", compression_level=5)
    with h5py.File(tmp_path / "train-00000-of-00001.h5", "r") as f:
        plist = f["image"].id.get_create_plist()
        filters = [plist.get_filter(i)[0] for i in range(plist.get_nfilters())]
    assert filters == [h5py.h5z.FILTER_SHUFFLE, 32015, h5py.h5z.FILTER_FLETCHER32]
    ds = ShardDataset(tmp_path)
    for i in range(5):
        expected = fx.sample(i)
        got = ds[i]
        assert all(np.array_equal(got[k], v) for k, v in expected.items())


def test_zstd_without_hdf5plugin_says_what_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "hdf5plugin", None)  # import fails as if not installed
    with pytest.raises(BlurgenError, match=r"pip install blurgen\[zstd\]"):
        _writer(tmp_path, compression="zstd")


def test_the_bytes_do_not_depend_on_when_dataset_handles_close(tmp_path, monkeypatch):
    """HDF5 places a dataset's cached chunks when its handle closes, and h5py may defer closing
    a handle dropped in a thread (a Dask worker running two tasks). A shard written while every
    handle stays open until the file closes (HDF5 then closes them in its own order) must have
    the bytes of one written normally: the writer places each dataset's chunks itself."""
    normal = fx.write_shard(tmp_path / "normal", range(12))
    held = []
    create = h5py.Group.create_dataset

    def create_and_hold(self, *args, **kwargs):
        held.append(create(self, *args, **kwargs))
        return held[-1]

    monkeypatch.setattr(h5py.Group, "create_dataset", create_and_hold)
    late = fx.write_shard(tmp_path / "late", range(12))
    monkeypatch.undo()
    assert len(held) > 3  # every dataset's handle was still open when the file closed
    assert (tmp_path / "late" / late["file"]).read_bytes() == (tmp_path / "normal" / normal["file"]).read_bytes()
    assert late["sha256"] == normal["sha256"]
