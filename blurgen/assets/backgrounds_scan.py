"""Scan background image folders (LHQ or any) into an :class:`AssetManifest`.

Per image: exact size, a 64-bit difference hash (dHash) of a small grayscale thumbnail, and
``broken`` when it cannot be used (unreadable, too small). Duplicates: images whose dHashes
differ in at most ``max_distance`` bits are grouped; in each group the first image (sorted
path order) is kept and the others get ``duplicate_of`` and ``duplicate_kind`` — "exact" when
their decoded pixels are identical to the kept one's, "near" otherwise.

Speed: the size comes from the file header and the thumbnail from a reduced decode
(``IMREAD_REDUCED_GRAYSCALE_*``), so most images are never fully decoded. Identical pixels give
identical thumbnails and hence identical dHashes, so full decodes (for the exact-pixel hash)
are needed only inside candidate groups.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import os
from collections import Counter
from pathlib import Path
from typing import Any, Iterable, Sequence

import cv2
import numpy as np

from blurgen.assets.batches import scan_in_batches
from blurgen.assets.image_header import header_size
from blurgen.assets.manifest import AssetManifest
from blurgen.errors import BlurgenError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")
CATEGORY = "background"
DEFAULT_MIN_WIDTH = 320
DEFAULT_MIN_HEIGHT = 240
DEFAULT_MAX_DISTANCE = 4  # dHash bits; re-encodes and resizes of one photo land at 0-2
THUMB_MIN_SIDE = 32  # reduce the decode no further than this: dHash averages down to 9x8
BATCH_SIZE = 32
_REDUCED = {2: cv2.IMREAD_REDUCED_GRAYSCALE_2, 4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
            8: cv2.IMREAD_REDUCED_GRAYSCALE_8}
_POPCOUNT8 = np.array([bin(i).count("1") for i in range(256)], np.uint8)


def find_images(root: Path) -> list[str]:
    """Image files below ``root`` (recursive), as sorted POSIX paths relative to it."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        rel = Path(folder).relative_to(root)
        found.extend((rel / f).as_posix() for f in files if f.lower().endswith(IMAGE_EXTENSIONS)
                     and not f.startswith("."))
    return sorted(found)


def dhash(gray: np.ndarray) -> int:
    """64-bit difference hash: is each of 8x8 cells brighter than its right neighbour (9x8 thumbnail)."""
    small = cv2.resize(gray, (9, 8), interpolation=cv2.INTER_AREA).astype(np.int16)
    bits = (small[:, 1:] > small[:, :-1]).ravel()
    return int(np.packbits(bits).view(">u8")[0])


def hamming(a: int, b: int) -> int:
    """Number of differing bits of two hashes."""
    return bin(a ^ b).count("1")


def pixel_digest(path: str | Path) -> str | None:
    """Hash of the fully decoded RGB pixels (and shape), or None when OpenCV cannot read the image."""
    image = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if image is None:
        return None
    digest = hashlib.blake2b(str(image.shape).encode(), digest_size=16)
    digest.update(np.ascontiguousarray(image).data)
    return digest.hexdigest()


def scan_image(path: str | Path, min_width: int = DEFAULT_MIN_WIDTH,
               min_height: int = DEFAULT_MIN_HEIGHT) -> dict[str, Any]:
    """Metadata of one image: width, height, dhash (16 hex digits), broken (reason or None)."""
    meta: dict[str, Any] = {"width": 0, "height": 0, "dhash": None, "broken": None,
                            "duplicate_of": None, "duplicate_kind": None}
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        meta["broken"] = f"unreadable ({exc.strerror or type(exc).__name__})"
        return meta
    buf = np.frombuffer(data, np.uint8)
    size = header_size(data)
    gray = None
    if size is not None and min(size) >= 2 * THUMB_MIN_SIDE:
        factor = max(f for f in (1, 2, 4, 8) if min(size) // f >= THUMB_MIN_SIDE)
        if factor > 1:
            gray = cv2.imdecode(buf, _REDUCED[factor])
            # Trust the header only if the reduced decode agrees with it; a swap means EXIF
            # rotation (OpenCV applied it), anything else a header we misread.
            if gray is not None:
                got = gray.shape[1], gray.shape[0]
                if _close(got, size, factor):
                    pass
                elif _close(got, size[::-1], factor):
                    size = size[::-1]
                else:
                    size, gray = None, None
    if gray is None:
        gray = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE)
        if gray is None:
            meta["broken"] = "unreadable (OpenCV cannot decode it)"
            return meta
        size = gray.shape[1], gray.shape[0]
    width, height = int(size[0]), int(size[1])
    meta.update(width=width, height=height, dhash=f"{dhash(gray):016x}")
    if width < min_width or height < min_height:
        meta["broken"] = f"too small ({width}x{height} < {min_width}x{min_height})"
    return meta


def _close(got: tuple[int, int], size: tuple[int, int], factor: int) -> bool:
    return all(abs(g - s / factor) <= 1 for g, s in zip(got, size))


def near_duplicate_groups(hashes: Sequence[int | None], max_distance: int = DEFAULT_MAX_DISTANCE) -> list[list[int]]:
    """Groups (sorted index lists, 2+ members) of hashes within ``max_distance`` bits, chained.

    Pigeonhole: split the 64 bits into ``max_distance + 1`` bands; two hashes within the
    distance agree exactly on at least one band, so only hashes sharing a band value are
    compared — no all-pairs comparison on 90k images.
    """
    idx = np.array([i for i, h in enumerate(hashes) if h is not None], np.int64)
    if len(idx) < 2:
        return []
    values = np.array([hashes[i] for i in idx], np.uint64)
    parent = list(range(len(idx)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    bands = max_distance + 1
    edges = np.linspace(0, 64, bands + 1).astype(int)
    for lo, hi in zip(edges[:-1], edges[1:]):
        key = (values >> np.uint64(lo)) & np.uint64((1 << (hi - lo)) - 1)
        order = np.argsort(key, kind="stable")
        splits = np.flatnonzero(np.diff(key[order])) + 1
        for bucket in np.split(order, splits):
            if len(bucket) < 2:
                continue
            for a, b in _close_pairs(values[bucket], max_distance):
                ra, rb = find(int(bucket[a])), find(int(bucket[b]))
                if ra != rb:
                    parent[max(ra, rb)] = min(ra, rb)
    groups: dict[int, list[int]] = {}
    for j in range(len(idx)):
        groups.setdefault(find(j), []).append(int(idx[j]))
    return sorted(sorted(g) for g in groups.values() if len(g) > 1)


def _close_pairs(values: np.ndarray, max_distance: int, block: int = 512) -> Iterable[tuple[int, int]]:
    """Index pairs (a < b) of ``values`` within ``max_distance`` bits, in row blocks to bound memory."""
    for start in range(0, len(values), block):
        rows = values[start:start + block]
        xor = np.ascontiguousarray(rows[:, None] ^ values[None, :])
        dist = _POPCOUNT8[xor.view(np.uint8)].reshape(len(rows), len(values), 8).sum(-1)
        for a, b in zip(*np.nonzero(dist <= max_distance)):
            if start + a < b:
                yield int(start + a), int(b)


@dataclasses.dataclass
class DuplicateGroup:
    """A kept image and the ids flagged as its duplicates: (id, "exact"|"near", dHash distance)."""

    keep: str
    duplicates: list[tuple[str, str, int]]


@dataclasses.dataclass
class BackgroundScan:
    """What :func:`scan_backgrounds` found."""

    manifest: AssetManifest
    groups: list[DuplicateGroup]


def _scan_batch(root: str, min_width: int, min_height: int, rels: Sequence[str]) -> list[dict[str, Any]]:
    return [scan_image(Path(root) / rel, min_width, min_height) for rel in rels]


def _scan_all(root: Path, rels: list[str], min_width: int, min_height: int, jobs: int,
              progress: bool) -> list[dict[str, Any]]:
    scan_batch = functools.partial(_scan_batch, str(root), min_width, min_height)
    return list(scan_in_batches(scan_batch, rels, batch_size=BATCH_SIZE, jobs=jobs, progress=progress,
                                desc="scan backgrounds", unit="image"))


def asset_ids(rels: Sequence[str]) -> list[str]:
    """Ids: the relative path without its extension, or with it where two files share a stem."""
    stems = [rel.rsplit(".", 1)[0] for rel in rels]
    clash = {s for s, n in Counter(stems).items() if n > 1}
    return [rel if stem in clash else stem for rel, stem in zip(rels, stems)]


def scan_backgrounds(
    root: str | Path,
    min_width: int = DEFAULT_MIN_WIDTH,
    min_height: int = DEFAULT_MIN_HEIGHT,
    max_distance: int = DEFAULT_MAX_DISTANCE,
    jobs: int = 1,
    progress: bool = False,
    name: str = "backgrounds",
    license: str = "unknown (see the source collection)",  # noqa: A002 - the manifest's word
    files: Sequence[str] | None = None,
) -> BackgroundScan:
    """Scan every image below ``root`` (or only ``files``: POSIX paths relative to ``root``, in
    the order duplicates are kept); the manifest's ``data_dir`` is ``root`` (absolute)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise BlurgenError(f"background folder not found: {root}")
    root = root.resolve()
    rels = list(files) if files is not None else find_images(root)
    if not rels:
        raise BlurgenError(f"no images ({', '.join(IMAGE_EXTENSIONS)}) found below {root}")
    if not 0 <= max_distance < 64:
        raise BlurgenError(f"max_distance must be in 0..63 bits, got {max_distance}")
    metas = _scan_all(root, rels, min_width, min_height, jobs, progress)
    ids = asset_ids(rels)

    # Broken images (unreadable, too small) are dropped anyway: keep them out of the groups.
    hashes = [int(m["dhash"], 16) if m["dhash"] and not m["broken"] else None for m in metas]
    groups = []
    for members in near_duplicate_groups(hashes, max_distance):
        keep = members[0]
        digests = {i: pixel_digest(root / rels[i]) for i in members}
        flagged = []
        for i in members[1:]:
            same = digests[i] is not None and digests[i] == digests[keep]
            kind = "exact" if same else "near"
            metas[i].update(duplicate_of=ids[keep], duplicate_kind=kind)
            flagged.append((ids[i], kind, hamming(hashes[i], hashes[keep])))
        groups.append(DuplicateGroup(ids[keep], flagged))

    assets = {i: {"category": CATEGORY, "path": rel, "license": license, "metadata": meta}
              for i, rel, meta in zip(ids, rels, metas)}
    return BackgroundScan(AssetManifest(name, "1", str(root), assets), groups)


def format_report(scan: BackgroundScan) -> str:
    """Counts of usable, broken (by reason) and duplicate images, then each duplicate group."""
    metas = [a["metadata"] for a in scan.manifest.assets.values()]
    broken: dict[str, int] = {}
    for m in metas:
        if m["broken"]:
            kind = m["broken"].split(" (", 1)[0]
            broken[kind] = broken.get(kind, 0) + 1
    dups = sum(len(g.duplicates) for g in scan.groups)
    usable = sum(1 for m in metas if not m["broken"] and not m["duplicate_of"])
    lines = [f"images: {len(metas)}  usable: {usable}  duplicates: {dups} in {len(scan.groups)} group(s)"
             + "".join(f"  {k}: {n}" for k, n in sorted(broken.items()))]
    for g in scan.groups:
        lines.append(f"  keep {g.keep}: " + ", ".join(f"{i} ({kind}, d={d})" for i, kind, d in g.duplicates))
    return "\n".join(lines)
