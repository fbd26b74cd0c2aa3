"""ShardDataset: global indexing over shards, field selection, worker processes, direct chunk reads."""

from __future__ import annotations

import functools
import multiprocessing as mp
import os
import pickle

import h5py
import numpy as np
import pytest
import shard_fixtures as fx

import blurgen.shards.reader as reader
from blurgen.errors import ShardError
from blurgen.shards import ShardDataset, ShardWriter
from blurgen.shards.manifest import MANIFEST_NAME


@pytest.fixture
def folder(tmp_path):
    """Three train shards of 5, 0 and 4 samples (ids 0-4 and 10-13) and one val shard."""
    fx.write_shard(tmp_path, range(5), task_index=0, num_tasks=3)
    fx.write_shard(tmp_path, [], task_index=1, num_tasks=3)
    fx.write_shard(tmp_path, range(10, 14), task_index=2, num_tasks=3)
    fx.write_shard(tmp_path, range(20, 22), split="val")
    return tmp_path


EXPECTED_IDS = [0, 1, 2, 3, 4, 10, 11, 12, 13, 20, 21]  # files sorted: train-*, then val-*


def _ids(ds) -> list[str]:
    return [ds[i]["sample_id"] for i in range(len(ds))]


def test_global_index_over_shards(folder):
    ds = ShardDataset(folder)
    assert len(ds) == 11 and ds.counts == [5, 0, 4, 2]
    assert _ids(ds) == [f"s-{i:05d}" for i in EXPECTED_IDS]
    for i, sid in enumerate(EXPECTED_IDS):
        expected = fx.sample(sid)
        got = ds[i]
        assert all(np.array_equal(got[k], v) for k, v in expected.items())
    assert ds[-1]["sample_id"] == "s-00021" and ds[-11]["sample_id"] == "s-00000"
    assert ds[np.int64(5)]["sample_id"] == "s-00010"
    assert ds.locate(5) == (str(folder / "train-00002-of-00003.h5"), 0)
    assert ds.locate(-2) == (str(folder / "val-00000-of-00001.h5"), 0)
    for bad in (11, -12):
        with pytest.raises(IndexError):
            ds[bad]
    assert ds.shard_attrs(2)["task_index"] == 2 and ds.shard_attrs(-1)["split"] == "val"
    ds.close()


def test_folder_without_manifest_and_explicit_paths(folder):
    with_manifest = _ids(ShardDataset(folder))
    (folder / MANIFEST_NAME).unlink()
    assert _ids(ShardDataset(folder)) == with_manifest
    val = folder / "val-00000-of-00001.h5"
    assert _ids(ShardDataset(val)) == ["s-00020", "s-00021"]
    assert _ids(ShardDataset([str(val), folder / "train-00000-of-00003.h5"]))[:3] == ["s-00020", "s-00021", "s-00000"]


def test_field_selection(folder):
    ds = ShardDataset(folder, fields=["sample_id", "bbox"])
    assert ds.fields == ("sample_id", "bbox")
    item = ds[6]
    assert set(item) == {"sample_id", "bbox"}
    assert item["bbox"].tolist() == [1, 2, 14, 15]
    with pytest.raises(ShardError, match="field 'flow_fwd' is not in the shards"):
        ShardDataset(folder, fields=["flow_fwd"])


def test_column_reads_one_field_over_all_shards(folder):
    base = fx.open_file_count()
    ds = ShardDataset(folder, fields=["image"])
    levels = ds.column("blur_level")
    assert levels.dtype == np.int64 and levels.tolist() == [i % 10 + 1 for i in EXPECTED_IDS]
    assert ds.column("sample_id") == [f"s-{i:05d}" for i in EXPECTED_IDS]
    assert ds.column("bbox").shape == (11, 4)
    assert fx.open_file_count() == base
    with pytest.raises(ShardError, match="no field 'flow_fwd'"):
        ds.column("flow_fwd")


def test_returned_arrays_are_the_callers(folder):
    ds = ShardDataset(folder)
    ds[0]["bbox"][:] = -1
    ds[0]["image"][:] = 0
    assert ds[0]["bbox"].tolist() == [1, 2, 3, 4]
    assert np.array_equal(ds[0]["image"], fx.sample(0)["image"])


def test_missing_sources(folder, tmp_path_factory):
    with pytest.raises(ShardError, match="not found"):
        ShardDataset(folder / "nope")
    with pytest.raises(ShardError, match="no shards"):
        ShardDataset(tmp_path_factory.mktemp("empty"))
    (folder / "val-00000-of-00001.h5").unlink()
    with pytest.raises(ShardError, match="val-00000-of-00001.h5 but the file is missing"):
        ShardDataset(folder)


def test_no_handle_open_until_first_access(folder):
    base = fx.open_file_count()
    ds = ShardDataset(folder)
    ds.shard_attrs(0)
    assert fx.open_file_count() == base and not ds._open
    ds[0], ds[6]
    assert fx.open_file_count() == base + 2
    state = pickle.loads(pickle.dumps(ds))
    assert not state._open and state._pid is None and len(state) == 11
    assert state[6]["sample_id"] == "s-00011"
    ds.close()
    state.close()
    assert fx.open_file_count() == base


def test_lru_bounds_open_shards(folder):
    base = fx.open_file_count()
    ds = ShardDataset(folder, max_open=1)
    assert _ids(ds)[-1] == "s-00021"
    assert fx.open_file_count() == base + 1
    ds.close()


def _parent_view(ds):
    return [(item["sample_id"], int(item["image"].astype(np.int64).sum())) for item in ds]


def test_spawned_workers_read_the_pickled_dataset(folder):
    ds = ShardDataset(folder)
    base = fx.open_file_count()
    with mp.get_context("spawn").Pool(2) as pool:
        results = pool.map(functools.partial(fx.read_item, ds), range(len(ds)), chunksize=3)
    assert fx.open_file_count() == base and not ds._open  # the parent never opened a shard
    assert [(sid, total) for _, sid, total, _ in results] == _parent_view(ds)
    assert os.getpid() not in {pid for pid, *_ in results}


def test_forked_workers_after_the_parent_read(folder):
    ds = ShardDataset(folder)
    expected = _parent_view(ds)  # the parent now holds open handles that the children inherit
    with mp.get_context("fork").Pool(2) as pool:
        results = pool.map(functools.partial(fx.read_item, ds), range(len(ds)), chunksize=2)
    assert [(sid, total) for _, sid, total, _ in results] == expected
    assert _parent_view(ds) == expected  # the children closing their copies left the parent's intact
    ds.close()


@pytest.fixture
def direct(monkeypatch):
    """Exercise the direct chunk path with zlib, whether or not libdeflate is installed."""
    monkeypatch.setattr(reader, "inflate", reader.zlib_inflate)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.int64, np.float16, np.float32, np.bool_])
def test_direct_chunk_path_equals_hdf5(tmp_path, monkeypatch, dtype):
    rng = np.random.default_rng(3)
    values = [(rng.standard_normal((40, 30)) * 50).astype(dtype) for _ in range(3)]
    with ShardWriter(tmp_path, schema="blurgen.test/1", split="train", task_index=0, num_tasks=1,
                        seed=0, config_json="{}") as w:
        for v in values:
            w.add({"x": v})
        w.close()
    monkeypatch.setattr(reader, "inflate", reader.zlib_inflate)
    ds = ShardDataset(tmp_path)
    got = [ds[i]["x"] for i in range(3)]
    assert ds._open[0].columns["x"].__name__ == "read"  # the direct reader, not HDF5's
    for g, v in zip(got, values):
        assert g.dtype == v.dtype and np.array_equal(g, v) and g.flags.writeable


def test_direct_chunk_path_detects_corruption(folder, direct):
    path = folder / "train-00000-of-00003.h5"
    fx.flip_byte(path, fx.chunk_byte_offset(path, "image", 3))
    ds = ShardDataset(folder, fields=["image"])
    assert np.array_equal(ds[2]["image"], fx.sample(2)["image"])
    with pytest.raises(OSError, match="sample 3: corrupt chunk"):
        ds[3]


# A gzip chunk as stored: zlib header (2 bytes), deflate data, adler32 of the uncompressed bytes
# (4), then HDF5's fletcher32 (4), which the direct path does not read.
@pytest.mark.parametrize("where", ["deflate data", "adler32"])
def test_libdeflate_path_detects_corruption(folder, monkeypatch, where):
    assert reader._libdeflate_inflate is not None, "the deflate package (libdeflate) is a dependency"
    monkeypatch.setattr(reader, "inflate", reader._libdeflate_inflate)  # the default, whatever ran before
    path = folder / "train-00000-of-00003.h5"
    offset, size = fx.chunk_span(path, "image", 3)
    fx.flip_byte(path, offset + size // 2 if where == "deflate data" else offset + size - 6)
    ds = ShardDataset(folder, fields=["image"])
    assert np.array_equal(ds[2]["image"], fx.sample(2)["image"])
    assert ds._open[0].columns["image"].__name__ == "read"  # the direct reader, not HDF5's
    with pytest.raises(OSError, match="sample 3: corrupt chunk"):
        ds[3]
    ds.close()


def test_hdf5_path_detects_corruption(folder, monkeypatch):
    monkeypatch.setattr(reader, "inflate", None)
    path = folder / "train-00000-of-00003.h5"
    fx.flip_byte(path, fx.chunk_byte_offset(path, "image", 3))
    ds = ShardDataset(folder, fields=["image"])
    with pytest.raises(OSError):
        ds[3]
    assert h5py.is_hdf5(path)
