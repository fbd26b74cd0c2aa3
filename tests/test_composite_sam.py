"""SAM masks: the real SamAutomaticMaskGenerator on a tiny randomly initialised SAM, the cache."""

from __future__ import annotations

import sys
from functools import partial

import cv2
import numpy as np
import pytest

torch = pytest.importorskip("torch")
modeling = pytest.importorskip("segment_anything.modeling")

from blurgen.composite.sam import SamMasks, checkpoint_identity  # noqa: E402
from blurgen.composite.sources import list_image_files, load_image_linear, load_source  # noqa: E402
from blurgen.errors import BlurgenError, ConfigError  # noqa: E402

# Thresholds at 0 and no box NMS: a random model's masks are poor and alike, and would all be
# filtered out or merged otherwise.
GENERATOR = {"points_per_side": 2, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0,
             "box_nms_thresh": 1.0}


def tiny_sam(img_size: int = 64, dim: int = 32):
    """A SAM with SAM's architecture at toy size: ~70k random weights, a 4x4 image embedding."""
    torch.manual_seed(0)
    embedding = img_size // 16
    return modeling.Sam(
        image_encoder=modeling.ImageEncoderViT(
            img_size=img_size, patch_size=16, embed_dim=dim, depth=1, num_heads=2, mlp_ratio=2.0,
            out_chans=dim, qkv_bias=True, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            use_rel_pos=False, window_size=0, global_attn_indexes=()),
        prompt_encoder=modeling.PromptEncoder(
            embed_dim=dim, image_embedding_size=(embedding, embedding),
            input_image_size=(img_size, img_size), mask_in_chans=4),
        mask_decoder=modeling.MaskDecoder(
            num_multimask_outputs=3, transformer_dim=dim, iou_head_depth=1, iou_head_hidden_dim=16,
            transformer=modeling.TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2)),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


class Untouchable:
    """Stands in for a model that must not be used: any attribute access fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the model was used ({name}) although the masks were cached")


@pytest.fixture
def setup(tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    rng = np.random.default_rng(0)
    picture = np.zeros((48, 64, 3), np.uint8)
    picture[:] = (40, 90, 160)
    picture[10:30, 12:40] = (230, 200, 40)
    picture += rng.integers(0, 20, picture.shape, dtype=np.uint8)
    cv2.imwrite(str(images / "a.png"), picture)
    cv2.imwrite(str(images / "b.png"), picture[::-1].copy())
    checkpoint = tmp_path / "sam_tiny.pth"
    checkpoint.write_bytes(b"stands for the weights of the injected model")
    return images, checkpoint, tmp_path / "cache"


def test_generator_runs_once_and_the_cache_is_reused(setup):
    images, checkpoint, cache = setup
    ref = list_image_files(images)[0]
    image = load_image_linear(ref.path)
    first = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu", model=tiny_sam())
    masks, names = first.masks_for(ref, image)
    assert (first.hits, first.misses) == (0, 1)
    assert masks.dtype == bool and masks.shape[1:] == (48, 64) and len(masks) >= 2
    assert names == [f"sam-{i}" for i in range(len(masks))]
    areas = masks.reshape(len(masks), -1).sum(axis=1)
    assert (np.diff(areas) <= 0).all()  # largest first
    assert len(list(cache.rglob("*.npz"))) == 1

    second = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu", model=Untouchable())
    again, again_names = second.masks_for(ref, image)
    assert (second.hits, second.misses) == (1, 0)
    assert again_names == names and np.array_equal(again, masks)

    # A cache hit does not even load the checkpoint (here not a loadable one).
    lazy = SamMasks(checkpoint, "vit_b", GENERATOR, cache)
    assert np.array_equal(lazy.masks_for(ref, image)[0], masks)
    other = list_image_files(images)[1]
    with pytest.raises(BlurgenError, match="cannot load SAM checkpoint .*: not a PyTorch checkpoint") as info:
        lazy.masks_for(other, load_image_linear(other.path))  # a miss: now it must load
    assert "\n" not in str(info.value)


def test_load_source_with_sam_filters_by_area(setup):
    images, checkpoint, cache = setup
    ref = list_image_files(images)[1]
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu", model=tiny_sam())
    everything = load_source(ref, source)
    some = load_source(ref, source, min_area=0.0, max_area=0.5)
    fractions = everything.masks.reshape(len(everything.masks), -1).mean(axis=1)
    assert len(some.mask_names) == int((fractions <= 0.5).sum())
    assert source.misses == 1 and source.hits == 1


def test_a_corrupt_cache_entry_is_recomputed(setup):
    images, checkpoint, cache = setup
    ref = list_image_files(images)[0]
    image = load_image_linear(ref.path)
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu", model=tiny_sam())
    masks, _ = source.masks_for(ref, image)
    (entry,) = cache.rglob("*.npz")
    entry.write_bytes(entry.read_bytes()[:50])
    again, _ = source.masks_for(ref, image)
    assert source.misses == 2 and np.array_equal(again, masks)
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]  # rewritten, no temporary left


def test_cache_key_covers_what_the_masks_depend_on(setup, tmp_path):
    _, checkpoint, cache = setup
    image = b"image bytes"

    def key(model_type="vit_b", generator=None, ckpt=checkpoint, data=image):
        return SamMasks(ckpt, model_type, generator or {}, cache, model=Untouchable()).cache_key(data)

    base = key()
    assert key(generator={"points_per_side": 32}) == base          # the default, spelled out
    assert key(generator={"points_per_batch": 8}) == base          # memory, not masks
    assert key(generator={"points_per_side": 16}) != base
    assert key(generator={"pred_iou_thresh": 0.5}) != base
    assert key(model_type="vit_h") != base
    assert key(data=b"other image bytes") != base
    other = tmp_path / "other.pth"
    other.write_bytes(checkpoint.read_bytes() + b"!")
    assert key(ckpt=other) != base


def test_checkpoint_identity_sees_the_tail_of_large_files(tmp_path):
    a, b = tmp_path / "a.pth", tmp_path / "b.pth"
    data = bytearray(3 << 20)
    a.write_bytes(bytes(data))
    data[-10] = 1
    b.write_bytes(bytes(data))
    assert checkpoint_identity(a) != checkpoint_identity(b)
    assert checkpoint_identity(a).startswith(f"{3 << 20}:")


def test_bad_settings_give_one_line(setup):
    _, checkpoint, cache = setup
    with pytest.raises(BlurgenError, match="SAM checkpoint .* not found") as missing:
        SamMasks(checkpoint.with_name("nope.pth"), "vit_h", {}, cache)
    with pytest.raises(ConfigError, match="sam.model_type"):
        SamMasks(checkpoint, "vit_x", {}, cache)
    with pytest.raises(ConfigError, match="sam.points_per_sid"):
        SamMasks(checkpoint, "vit_b", {"points_per_sid": 4}, cache)
    assert "\n" not in str(missing.value)


def test_missing_segment_anything_gives_the_install_hint(setup, monkeypatch):
    images, checkpoint, cache = setup
    monkeypatch.setitem(sys.modules, "segment_anything", None)  # import now raises ImportError
    ref = list_image_files(images)[0]
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, model=tiny_sam())
    with pytest.raises(BlurgenError, match=r"pip install 'blurgen\[sam\]'") as info:
        source.masks_for(ref, load_image_linear(ref.path))
    assert "\n" not in str(info.value)


def test_checkpoint_of_another_architecture_is_one_line(setup):
    """The real loading path: build vit_b, load a checkpoint file (the tiny model's weights)."""
    images, checkpoint, cache = setup
    torch.save(tiny_sam().state_dict(), checkpoint)
    ref = list_image_files(images)[0]
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu")
    with pytest.raises(BlurgenError, match="as vit_b: its weights do not fit") as info:
        source.masks_for(ref, load_image_linear(ref.path))
    assert "\n" not in str(info.value)


def test_warm_cache_counts_and_then_workers_only_read(setup):
    images, checkpoint, cache = setup
    (images / "broken.png").write_bytes(b"not a png")
    refs = list_image_files(images)
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu", model=tiny_sam())
    assert source.warm_cache(refs) == {"computed": 2, "unreadable image": 1}
    assert source.warm_cache(refs) == {"cached": 2, "unreadable image": 1}
    reader = SamMasks(checkpoint, "vit_b", GENERATOR, cache, model=Untouchable())
    assert reader.warm_cache(refs)["cached"] == 2 and reader.misses == 0


def test_pickling_leaves_a_loaded_network_behind(setup):
    import pickle

    _, checkpoint, cache = setup
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, model=tiny_sam())
    assert pickle.loads(pickle.dumps(source))._model is not None  # injected: travels along
    source._injected = False  # as if loaded from the checkpoint on a miss
    copy = pickle.loads(pickle.dumps(source))
    assert copy._model is None and copy._generator is None and copy.params == source.params


def test_checkpoint_with_more_than_weights_is_one_line(setup):
    images, checkpoint, cache = setup
    torch.save({"weights": torch.zeros(2), "optimizer": Untouchable}, checkpoint)  # a class: not weights-only
    ref = list_image_files(images)[0]
    source = SamMasks(checkpoint, "vit_b", GENERATOR, cache, device="cpu")
    with pytest.raises(BlurgenError, match="holds more than tensors") as info:
        source.masks_for(ref, load_image_linear(ref.path))
    assert "\n" not in str(info.value)
