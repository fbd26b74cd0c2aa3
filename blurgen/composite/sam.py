"""Instance masks from SAM's automatic mask generator, computed once per source image and cached.

``segment-anything`` (and torch) are optional: they are imported on the first cache miss only,
so a run whose masks are all cached needs neither, and ``import blurgen`` never pays for them.
The model is built the first time a mask is missing, from the user's checkpoint
(``sam_model_registry[model_type]`` for the architecture, then the checkpoint's weights).

Cache: one compressed ``.npz`` per source (masks bit-packed, 8 per byte) under ``cache_dir``,
named by a SHA-256 key over everything the masks depend on: the image file's bytes, the model
type, the checkpoint's identity and the generator parameters (defaults filled in, so an
explicit default and an omitted one share entries). ``points_per_batch`` is left out: it only
sets how many prompts run at once (memory), not what comes out. Entries are written under a
temporary name and renamed, so parallel tasks that compute the same source (same bytes) never
leave a torn file, and an unreadable entry counts as a miss and is rewritten.

Checkpoint identity is its size plus the SHA-256 of its first and last MiB, not a hash of the
whole file (vit_h is 2.4 GB, seconds to hash in every task): torch checkpoints are zip archives
whose central directory, at the end, holds a CRC-32 of every stored tensor, so any change of
weights changes the last MiB.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from pathlib import Path
from collections import Counter
from typing import Any, Iterable

import numpy as np

from blurgen.atomic import temporary_name
from blurgen.color import linear_to_srgb_uint8
from blurgen.composite.config import SAM_MODEL_TYPES
from blurgen.composite.sources import PhotoMasks, SkipSource, SourceRef, load_image_linear
from blurgen.errors import BlurgenError, ConfigError

# SamAutomaticMaskGenerator's parameters that a config may set, with segment-anything 1.0's
# defaults. point_grids (arrays) and output_mode (blurgen needs binary masks) are not offered.
GENERATOR_DEFAULTS: dict[str, Any] = {
    "points_per_side": 32,
    "points_per_batch": 64,
    "pred_iou_thresh": 0.88,
    "stability_score_thresh": 0.95,
    "stability_score_offset": 1.0,
    "box_nms_thresh": 0.7,
    "crop_n_layers": 0,
    "crop_nms_thresh": 0.7,
    "crop_overlap_ratio": 512 / 1500,
    "crop_n_points_downscale_factor": 1,
    "min_mask_region_area": 0,
}
_NOT_IN_KEY = ("points_per_batch",)  # changes memory use, not the masks
CACHE_FORMAT = "blurgen.sam-masks/1"
_IDENTITY_CHUNK = 1 << 20
INSTALL_HINT = "install with pip install 'blurgen[sam]'"


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    line = text[0] if text else type(exc).__name__
    return line if len(line) <= 200 else line[:197] + "..."


def checkpoint_identity(path: Path) -> str:
    """Size and SHA-256 of the first and last MiB of a checkpoint file."""
    size = path.stat().st_size
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        digest.update(fh.read(_IDENTITY_CHUNK))
        if size > _IDENTITY_CHUNK:
            fh.seek(max(_IDENTITY_CHUNK, size - _IDENTITY_CHUNK))
            digest.update(fh.read())
    return f"{size}:{digest.hexdigest()}"


def generator_params(generator: dict[str, Any] | None) -> dict[str, Any]:
    """The generator's parameters with defaults filled in; ConfigError names an unknown key."""
    params = dict(GENERATOR_DEFAULTS)
    for key, value in (generator or {}).items():
        if key not in GENERATOR_DEFAULTS:
            raise ConfigError(f"sam.{key}: not a SAM generator parameter; known: {', '.join(GENERATOR_DEFAULTS)}")
        params[key] = value
    return params


def pack_masks(masks: np.ndarray) -> np.ndarray:
    """NxHxW bool -> N x ceil(H*W/8) uint8, 8 pixels per byte."""
    return np.packbits(masks.reshape(len(masks), -1), axis=1)


def unpack_masks(packed: np.ndarray, shape: tuple[int, int, int]) -> np.ndarray:
    n, h, w = shape
    return np.unpackbits(packed, axis=1, count=h * w).reshape(n, h, w).astype(bool)


class SamMasks(PhotoMasks):
    """Mask source: SAM's automatic mask generator with a user checkpoint, cached per image.

    ``model`` lets a caller (tests) hand in a built ``Sam``; otherwise the checkpoint is loaded
    on the first cache miss. ``device``: "auto" (CUDA when available, else CPU), or a torch
    device string.
    """

    def __init__(self, checkpoint: Path, model_type: str, generator: dict[str, Any] | None,
                 cache_dir: Path, device: str = "auto", model: Any = None) -> None:
        if model_type not in SAM_MODEL_TYPES:
            raise ConfigError(f"sam.model_type: {model_type!r} is not one of {', '.join(SAM_MODEL_TYPES)}")
        self.checkpoint = Path(checkpoint)
        if not self.checkpoint.is_file():
            raise BlurgenError(f"SAM checkpoint {self.checkpoint} not found; download the {model_type} "
                               "checkpoint from the segment-anything project and set sam.checkpoint")
        self.model_type = model_type
        self.params = generator_params(generator)
        self.cache_dir = Path(cache_dir)
        self.device = device
        self._model = model
        self._injected = model is not None
        self._generator = None
        self._identity = checkpoint_identity(self.checkpoint)
        self._image_digests: dict[tuple[str, int, int], str] = {}
        self.hits = 0
        self.misses = 0

    def __getstate__(self) -> dict[str, Any]:
        # Sent to worker processes without the loaded network (GBs for vit_h) and its generator:
        # a worker that meets a miss loads its own. An injected model (tests) travels along.
        state = dict(self.__dict__)
        state["_generator"] = None
        if not self._injected:
            state["_model"] = None
        return state

    # -- cache --------------------------------------------------------------------------------

    def cache_key(self, image_bytes: bytes) -> str:
        """SHA-256 (hex) over everything the masks of an image (given as its file's bytes) depend on."""
        return self._key(hashlib.sha256(image_bytes).hexdigest())

    def _key(self, image_digest: str) -> str:
        keyed = {k: v for k, v in self.params.items() if k not in _NOT_IN_KEY}
        description = json.dumps({"format": CACHE_FORMAT, "image": image_digest, "model_type": self.model_type,
                                  "checkpoint": self._identity, "generator": keyed}, sort_keys=True)
        return hashlib.sha256(description.encode()).hexdigest()

    def _image_digest(self, path: Path) -> str:
        """SHA-256 of an image file, remembered per (path, size, mtime): samples reuse sources."""
        stat = path.stat()
        memo = (str(path), stat.st_size, stat.st_mtime_ns)
        digest = self._image_digests.get(memo)
        if digest is None:
            if len(self._image_digests) > 4096:
                self._image_digests.clear()
            digest = self._image_digests[memo] = hashlib.sha256(path.read_bytes()).hexdigest()
        return digest

    def cache_path(self, key: str) -> Path:
        return self.cache_dir / key[:2] / f"{key}.npz"

    def _read_cache(self, path: Path, shape: tuple[int, int]) -> tuple[np.ndarray, list[str]] | None:
        """Cached masks, or None when there is no usable entry (missing, torn, other size)."""
        try:
            with np.load(path, allow_pickle=False) as entry:
                n, h, w = (int(v) for v in entry["shape"])
                if (h, w) != shape or str(entry["format"]) != CACHE_FORMAT:
                    return None
                masks = unpack_masks(entry["packed"], (n, h, w))
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
            return None
        return masks, [f"sam-{i}" for i in range(n)]

    def _write_cache(self, path: Path, masks: np.ndarray, scores: np.ndarray, source_id: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_name(path)
        try:
            with open(tmp, "xb") as fh:
                np.savez_compressed(fh, format=np.array(CACHE_FORMAT), shape=np.array(masks.shape, np.int64),
                                    packed=pack_masks(masks), scores=scores.astype(np.float32),
                                    source_id=np.array(source_id))
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # -- model --------------------------------------------------------------------------------

    def _build_generator(self):
        try:
            import torch
            from segment_anything import SamAutomaticMaskGenerator, sam_model_registry
        except ImportError as exc:
            raise BlurgenError(f"SAM masks need segment-anything and torch ({_one_line(exc)}); "
                               f"{INSTALL_HINT}") from None
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = self._model
        if model is None:
            # The weights onto the CPU, then the architecture: build_sam's own torch.load has no
            # map_location, so a checkpoint saved from a GPU would not load on a CPU machine; and
            # reading the file first fails fast on a bad one, before seconds of initialisation.
            where = f"cannot load SAM checkpoint {self.checkpoint} as {self.model_type}"
            try:
                state = torch.load(self.checkpoint, map_location="cpu", weights_only=True)
            except Exception as exc:  # torch raises many kinds for a bad file
                if not zipfile.is_zipfile(self.checkpoint):
                    reason = "not a PyTorch checkpoint file"
                elif "weights only load failed" in str(exc).lower():
                    reason = "it holds more than tensors (expected SAM's state_dict, as the official checkpoints)"
                else:
                    reason = _one_line(exc)
                raise BlurgenError(f"{where}: {reason}") from None
            if isinstance(state, dict) and isinstance(state.get("model"), dict):
                state = state["model"]  # fine-tuning scripts often wrap the weights so
            model = sam_model_registry[self.model_type]()
            try:
                model.load_state_dict(state)
            except Exception:
                raise BlurgenError(f"{where}: its weights do not fit the {self.model_type} architecture "
                                   "(a checkpoint of another model type? set --sam-model)") from None
        try:
            model = model.to(device).eval()
        except Exception as exc:
            raise BlurgenError(f"cannot move SAM to device {device!r}: {_one_line(exc)}") from None
        self._model = model
        return SamAutomaticMaskGenerator(model, output_mode="binary_mask", **self.params)

    def generate(self, image_linear: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Run the generator: NxHxW bool masks, largest first, and their predicted IoUs."""
        if self._generator is None:
            self._generator = self._build_generator()
        h, w = image_linear.shape[:2]
        records = self._generator.generate(linear_to_srgb_uint8(image_linear))  # SAM sees 8-bit sRGB RGB
        # Largest first (stable): a deterministic order that does not depend on SAM's NMS order.
        order = sorted(range(len(records)), key=lambda i: -int(records[i]["area"]))
        masks = np.zeros((len(records), h, w), bool)
        for k, i in enumerate(order):
            masks[k] = records[i]["segmentation"]
        scores = np.array([records[i]["predicted_iou"] for i in order], np.float32)
        return masks, scores

    # -- PhotoMasks ---------------------------------------------------------------------------

    def masks_for(self, ref: SourceRef, image_linear: np.ndarray) -> tuple[np.ndarray, list[str]]:
        if ref.path is None:
            raise ValueError(f"{ref.source_id}: SAM masks need an image file")
        path = self.cache_path(self._key(self._image_digest(Path(ref.path))))
        cached = self._read_cache(path, image_linear.shape[:2])
        if cached is not None:
            self.hits += 1
            return cached
        self.misses += 1
        masks, scores = self.generate(image_linear)
        self._write_cache(path, masks, scores, ref.source_id)
        return masks, [f"sam-{i}" for i in range(len(masks))]

    def warm_cache(self, refs: Iterable[SourceRef]) -> Counter:
        """Compute the masks of every source not cached yet, in this process (e.g. once, on the GPU,
        before parallel workers that then only read the cache). Returns counts: "cached",
        "computed", and the reason of each source skipped as unusable."""
        counts: Counter = Counter()
        for ref in refs:
            if ref.path is None:
                continue
            try:
                image = load_image_linear(ref.path)
            except SkipSource as skip:
                counts[skip.reason] += 1
                continue
            misses = self.misses
            self.masks_for(ref, image)
            counts["computed" if self.misses > misses else "cached"] += 1
        return counts
