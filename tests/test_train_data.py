"""Shards -> torch dataset -> DataLoader -> device batch, on the golden render shard and small
``blurgen.test/1`` shards; values checked against plain h5py reads and hand computations."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from blurgen.errors import BlurgenError
from blurgen.train.data import (
    DeviceAugment,
    ShardTorchDataset,
    augment_generator,
    device_images,
    hflip_boxes,
    make_loader,
    split_files,
    to_device,
    validation_files,
)
from shard_fixtures import chunk_byte_offset, flip_byte, write_shard

GOLDEN = Path(__file__).parent / "golden" / "render_demo"
GOLDEN_FILE = GOLDEN / "test-00000-of-00001.h5"
with h5py.File(GOLDEN_FILE, "r", locking=False) as _f:
    GOLDEN_COUNT = len(_f["image"])  # the golden render's images (regenerating the shard may change it)


@pytest.fixture()
def render_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "render"
    shutil.copytree(GOLDEN, folder)
    return folder


def test_items_hold_the_requested_fields_as_stored():
    ds = ShardTorchDataset(GOLDEN, ["image", "blur_level", "object_id", "bbox"],
                           labels={"object": np.arange(GOLDEN_COUNT) % 3})
    item = ds[5]
    assert set(item) == {"image", "blur_level", "object_id", "bbox", "object"}
    with h5py.File(GOLDEN_FILE, "r", locking=False) as f:  # the oracle: plain h5py
        assert item["image"].dtype == torch.uint8 and np.array_equal(item["image"].numpy(), f["image"][5])
        assert item["blur_level"].item() == int(f["blur_level"][5]) and item["blur_level"].dim() == 0
        assert item["object_id"] == f["object_id"][5].decode()
        assert item["bbox"].tolist() == f["bbox"][5].tolist()
    assert item["object"].item() == 2


def test_a_tuple_index_stacks_its_items():
    ds = ShardTorchDataset(GOLDEN, ["image", "blur_severity", "sample_id"], labels={"object": np.arange(GOLDEN_COUNT)})
    item = ds[(0, 7, 3)]
    with h5py.File(GOLDEN_FILE, "r", locking=False) as f:
        assert np.array_equal(item["image"].numpy(), f["image"][[0, 3, 7]][[0, 2, 1]])
        assert item["blur_severity"].tolist() == pytest.approx(f["blur_severity"][[0, 3, 7]][[0, 2, 1]].tolist())
        assert item["sample_id"] == [f["sample_id"][i].decode() for i in (0, 7, 3)]
    assert item["object"].tolist() == [0, 7, 3]
    batch = torch.utils.data.default_collate([ds[(0, 1)], ds[(2, 3)]])
    assert batch["image"].shape == (2, 2, 48, 64, 3) and batch["image"].dtype == torch.uint8


def test_unrequested_fields_are_never_read(render_copy: Path):
    # a corrupt alpha chunk of sample 4: reading alpha fails, reading other fields does not
    shard = render_copy / GOLDEN_FILE.name
    flip_byte(shard, chunk_byte_offset(shard, "alpha", 4))
    ds = ShardTorchDataset(render_copy, ["image", "blur_level", "bbox"])
    assert ds[4]["blur_level"].item() >= 1
    with pytest.raises(OSError):
        ShardTorchDataset(render_copy, ["image", "alpha"])[4]


def test_a_missing_field_is_one_clear_line():
    with pytest.raises(BlurgenError) as err:
        ShardTorchDataset(GOLDEN, ["image", "flow_fwd"], purpose="the retrieval task")
    message = str(err.value)
    assert "\n" not in message
    assert "'flow_fwd'" in message and "blurgen.render/1" in message and "the retrieval task" in message


def test_split_files_picks_one_split(tmp_path: Path):
    write_shard(tmp_path, range(3), split="train", task_index=0, num_tasks=2)
    write_shard(tmp_path, range(3, 5), split="train", task_index=1, num_tasks=2)
    write_shard(tmp_path, range(5, 9), split="test")
    files = split_files(tmp_path, "train")
    assert [Path(p).name for p in files] == ["train-00000-of-00002.h5", "train-00001-of-00002.h5"]
    assert len(ShardTorchDataset(files, ["image"])) == 5
    with pytest.raises(BlurgenError, match="no 'val' shards.*test, train"):
        split_files(tmp_path, "val")


def test_validation_files_come_from_val_else_from_data_else_none(tmp_path: Path):
    data, val = tmp_path / "data", tmp_path / "val"
    write_shard(data, range(3), split="train")
    write_shard(val, range(3, 5), split="val")
    assert validation_files(data, None, "val") is None  # --data without a val split: no validation
    assert [Path(p).name for p in validation_files(data, val, "val")] == ["val-00000-of-00001.h5"]
    with pytest.raises(BlurgenError, match="no 'test' shards"):  # a --val folder without the split is an error
        validation_files(data, val, "test")
    write_shard(data, range(5, 7), split="val")
    assert [Path(p).parent for p in validation_files(data, None, "val")] == [data]


def test_a_broken_validation_split_is_one_line_not_no_validation(tmp_path: Path):
    data = tmp_path / "data"
    write_shard(data, range(3), split="train")
    write_shard(data, range(3, 5), split="val")
    (data / "val-00000-of-00001.h5").write_bytes(b"not an HDF5 file")  # listed, there, but unreadable
    with pytest.raises(BlurgenError, match="val-00000-of-00001.h5 is not a readable HDF5 file") as err:
        validation_files(data, None, "val")
    assert "\n" not in str(err.value)

    def refusing(folder, split):  # a task's lister that refuses the split it finds (e.g. its schema)
        raise BlurgenError(f"{folder}: not this task's shards")

    write_shard(data, range(3, 5), split="val")  # readable again
    with pytest.raises(BlurgenError, match="not this task's shards"):
        validation_files(data, None, "val", refusing)
    assert validation_files(data, None, "test", refusing) is None  # no test shard at all: no validation


class Sequential(torch.utils.data.Sampler):
    def __init__(self, items: list) -> None:
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


class WorkerSeed(torch.utils.data.Dataset):
    """Each item: the worker's torch seed and a draw from its default generator."""

    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> torch.Tensor:
        info = torch.utils.data.get_worker_info()
        return torch.tensor([info.id, info.seed % 2**62, int(torch.randint(0, 2**62, (1,)))])


def loader_pass(dataset, items, seed: int) -> list:
    loader = make_loader(dataset, batch_size=2, sampler=Sequential(items), seed=seed, workers=2)
    return [batch for batch in loader]


def test_two_workers_give_the_same_batches_for_the_same_seed(tmp_path: Path):
    write_shard(tmp_path, range(10))
    ds = ShardTorchDataset(tmp_path, ["image", "blur_level", "sample_id"])
    items = [7, 2, 1, 9, 4, 0, 5, 3]
    first, second = loader_pass(ds, items, 3), loader_pass(ds, items, 3)
    assert len(first) == 4
    for a, b in zip(first, second):
        assert torch.equal(a["image"], b["image"]) and a["sample_id"] == b["sample_id"]
    # in sampler order, whatever worker decoded the batch
    assert [s for batch in first for s in batch["sample_id"]] == [f"s-{i:05d}" for i in items]


def test_worker_seeds_follow_the_run_seed():
    a, b, c = (torch.cat(loader_pass(WorkerSeed(), list(range(8)), seed)) for seed in (5, 5, 6))
    assert torch.equal(a, b)
    assert not torch.equal(a[:, 1:], c[:, 1:])
    seeds = {int(w): int(s) for w, s, _ in a.tolist()}
    assert seeds[1] == seeds[0] + 1  # base + worker id, base from the run's generator


def test_normalisation_matches_a_hand_computation():
    images = torch.zeros(2, 1, 2, 3, dtype=torch.uint8)
    images[0, 0, 1] = torch.tensor([255, 255, 255])
    images[1, 0, 0] = torch.tensor([51, 102, 153])
    x, flipped = device_images(images)
    assert x.shape == (2, 3, 1, 2) and x.dtype == torch.float32 and flipped is None
    # (v/255 - mean)/std with torchvision's ImageNet mean (.485, .456, .406) and std (.229, .224, .225)
    zero = [-2.1179039, -2.0357143, -1.8044444]
    full = [2.2489083, 2.4285714, 2.6400000]
    mid = [(0.2 - 0.485) / 0.229, (0.4 - 0.456) / 0.224, (0.6 - 0.406) / 0.225]  # 51/255 = 0.2 ...
    assert x[0, :, 0, 0].tolist() == pytest.approx(zero, abs=1e-6)
    assert x[0, :, 0, 1].tolist() == pytest.approx(full, abs=1e-6)
    assert x[1, :, 0, 0].tolist() == pytest.approx([-1.2445415, -0.25, 0.8622222], abs=1e-6)
    assert x[1, :, 0, 0].tolist() == pytest.approx(mid, abs=1e-6)
    assert x.is_contiguous(memory_format=torch.channels_last)


def test_tuple_batches_keep_their_leading_dims():
    images = torch.arange(2 * 7 * 4 * 5 * 3).reshape(2, 7, 4, 5, 3).remainder(256).to(torch.uint8)
    x, _ = device_images(images)
    assert x.shape == (2, 7, 3, 4, 5)
    assert x[1, 6, 2, 3, 4].item() == pytest.approx((images[1, 6, 3, 4, 2].item() / 255 - 0.406) / 0.225, abs=1e-5)


def test_augmentation_flips_and_scales_per_image_within_its_ranges():
    rng = np.random.default_rng(0)
    images = torch.from_numpy(rng.integers(20, 200, (16, 6, 8, 3), dtype=np.uint8))
    plain, _ = device_images(images)
    x, flipped = device_images(images, augment=DeviceAugment(hflip=0.5),
                               generator=augment_generator(1, 0, 0, "cpu"))
    assert 0 < int(flipped.sum()) < 16
    assert torch.allclose(x[flipped], plain[flipped].flip(-1)) and torch.equal(x[~flipped], plain[~flipped])
    y, _ = device_images(images, augment=DeviceAugment(brightness=0.2), generator=augment_generator(1, 0, 0, "cpu"))
    unit, aug = images.permute(0, 3, 1, 2).double() / 255, (y.double() * torch.tensor(
        [0.229, 0.224, 0.225]).double().view(3, 1, 1) + torch.tensor([0.485, 0.456, 0.406]).double().view(3, 1, 1))
    factor = aug / unit  # one factor per image, in [0.8, 1.2] (no clipping: values stay under 200*1.2/255)
    per_image = factor.flatten(1)
    assert torch.allclose(per_image, per_image[:, :1].expand_as(per_image), atol=1e-5)
    assert ((per_image[:, 0] >= 0.8) & (per_image[:, 0] <= 1.2)).all() and per_image[:, 0].std() > 0.01
    again, _ = device_images(images, augment=DeviceAugment(brightness=0.2), generator=augment_generator(1, 0, 0, "cpu"))
    assert torch.equal(again, y)
    other, _ = device_images(images, augment=DeviceAugment(brightness=0.2), generator=augment_generator(1, 0, 1, "cpu"))
    assert not torch.equal(other, y)


def test_boxes_follow_the_flip():
    boxes = torch.tensor([[1, 2, 4, 5], [0, 0, 10, 3]], dtype=torch.int32)
    out = hflip_boxes(boxes, 10, torch.tensor([True, False]))
    assert out.tolist() == [[6, 2, 9, 5], [0, 0, 10, 3]]  # pixels 1..3 of 10 mirror to 6..8


def test_to_device_moves_tensors_and_keeps_the_rest():
    batch = {"image": torch.zeros(1, 2, 2, 3, dtype=torch.uint8), "sample_id": ["a"]}
    moved = to_device(batch, "cpu")
    assert moved["sample_id"] == ["a"] and torch.equal(moved["image"], batch["image"])


def test_bad_inputs_are_refused():
    with pytest.raises(BlurgenError):
        device_images(torch.zeros(1, 2, 2, 3))
    with pytest.raises(BlurgenError):
        device_images(torch.zeros(1, 2, 2, 3, dtype=torch.uint8), augment=DeviceAugment(hflip=1.0))
    with pytest.raises(BlurgenError):
        DeviceAugment(brightness=1.5)
    with pytest.raises(BlurgenError):
        ShardTorchDataset(GOLDEN, ["image"], labels={"object": np.arange(3)})


def test_the_retrieval_sampler_drives_a_loader_over_a_render_shard():
    from blurgen.train.retrieval_sampling import RetrievalColumns, RetrievalSampler

    ds = ShardTorchDataset(GOLDEN, ["image", "trajectory_id", "blur_level"])
    cols = RetrievalColumns.from_dataset(ds.shards)
    with h5py.File(GOLDEN_FILE, "r", locking=False) as f:
        assert cols.trajectory_id.tolist() == f["trajectory_id"][()].tolist()
        assert [cols.objects[c] for c in cols.object_code] == [s.decode() for s in f["object_id"][()]]
    sampler = RetrievalSampler(cols, 0)
    loader = make_loader(ds, batch_size=2, sampler=sampler, seed=0, workers=0, drop_last=False)
    got = [int(t) for batch in loader for t in batch["trajectory_id"]]
    with h5py.File(GOLDEN_FILE, "r", locking=False) as f:
        trajectories = sorted(set(f["trajectory_id"][()].tolist()))
    assert len(trajectories) >= 3 and sorted(got) == trajectories  # one image per trajectory of the shard
