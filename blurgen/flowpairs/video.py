"""Frame sources for ``blurgen flowpairs video``: video files and folders of frames.

``find_sources(root)`` walks a folder (recursively, sorted): every video file (by extension,
anything OpenCV's FFmpeg backend decodes) is one source, and so is every folder that directly
holds image files (the frames, in natural order: ``frame2.png`` before ``frame10.png``), the
layout of the GoPro and NfS high-speed datasets. A single video file may be given as the root.

``probe`` reads what planning needs without decoding: frame count, size and frame rate (from
the container; frame folders have none, ``video.fps`` supplies one). ``read_frames`` yields RGB
uint8 frames in order. Bad inputs are :class:`~blurgen.errors.BlurgenError` with one line that
names the file: a file OpenCV cannot open, a source with no frames, frames of different sizes,
an unreadable frame image, and a video that ends before the frame count its container states
(:class:`TruncatedVideo`, which the pipeline may count instead, see ``video.truncated``).
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from blurgen.errors import BlurgenError
from blurgen.flowpairs.averaging import decode, encode

VIDEO_EXTENSIONS = frozenset({".mp4", ".m4v", ".mov", ".avi", ".mkv", ".webm", ".mpg", ".mpeg", ".wmv",
                              ".flv", ".ts", ".mts", ".m2ts", ".3gp", ".y4m", ".mxf", ".ogv"})
IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm"})
# Frame rates outside this range are what containers report when they do not know (0, NaN)
# or when OpenCV returns a time base instead of a rate; treated as unknown.
_PLAUSIBLE_FPS = (0.1, 100_000.0)


class TruncatedVideo(BlurgenError):
    """The video ended (or failed to decode) before the frame count its container gives."""

    def __init__(self, message: str, decoded: int) -> None:
        super().__init__(message)
        self.decoded = decoded  # frames (kept ones, after the step) that did decode


@dataclasses.dataclass(frozen=True)
class Source:
    """One video or frame folder, as planning sees it."""

    index: int                 # position in the sorted source list
    source_id: str             # path relative to the root, '/'-separated
    path: Path
    kind: str                  # "video" or "frames"
    frame_count: int           # the container's count, or the number of frame files
    width: int
    height: int
    fps: float | None          # the container's rate; None when unknown
    files: tuple[str, ...] = ()  # frame file names (frames only), in order


def _natural_key(name: str) -> list:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", name)]


def find_sources(root: str | Path) -> list[tuple[str, Path, str]]:
    """``(source_id, path, kind)`` of every video and frame folder under ``root``, sorted by id."""
    root = Path(root).expanduser()
    if root.is_file():
        if root.suffix.lower() not in VIDEO_EXTENSIONS:
            raise BlurgenError(f"{root} is not a video file (known extensions: "
                               f"{', '.join(sorted(VIDEO_EXTENSIONS))})")
        return [(root.name, root, "video")]
    if not root.is_dir():
        raise BlurgenError(f"videos folder not found: {root}")
    found: list[tuple[str, Path, str]] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        here = Path(folder)
        rel = here.relative_to(root).as_posix()
        visible = [f for f in files if not f.startswith(".")]
        if any(Path(f).suffix.lower() in IMAGE_EXTENSIONS for f in visible):
            found.append((rel if rel != "." else root.name, here, "frames"))
        for name in visible:
            if Path(name).suffix.lower() in VIDEO_EXTENSIONS:
                found.append(((here / name).relative_to(root).as_posix(), here / name, "video"))
    if not found:
        raise BlurgenError(f"no videos or frame folders in {root} (videos: {', '.join(sorted(VIDEO_EXTENSIONS))}; "
                           f"frames: folders of {', '.join(sorted(IMAGE_EXTENSIONS))} files)")
    return sorted(found, key=lambda s: s[0])


def _open(path: Path) -> cv2.VideoCapture:
    capture = cv2.VideoCapture(str(path), cv2.CAP_FFMPEG)
    if not capture.isOpened():
        capture.release()
        raise BlurgenError(f"{path}: OpenCV cannot open this video (not a video, damaged, or a codec "
                           "its FFmpeg lacks): convert it, e.g. ffmpeg -i IN -c:v ffv1 OUT.mkv")
    return capture


def plausible_fps(value: float) -> float | None:
    """A container's frame rate, or None when it is not a usable rate."""
    return float(value) if math.isfinite(value) and _PLAUSIBLE_FPS[0] <= value <= _PLAUSIBLE_FPS[1] else None


def probe(index: int, source_id: str, path: Path, kind: str) -> Source:
    """Frame count, size and frame rate of one source, without decoding a video's frames.

    A video whose container gives no frame count is counted by demuxing it once (slow but rare).
    """
    if kind == "frames":
        files = tuple(sorted((f.name for f in path.iterdir() if f.is_file() and not f.name.startswith(".")
                              and f.suffix.lower() in IMAGE_EXTENSIONS), key=_natural_key))
        if not files:
            raise BlurgenError(f"{path}: frame folder has no frames")
        first = read_image(path / files[0])
        return Source(index, source_id, path, kind, len(files), first.shape[1], first.shape[0], None, files)
    capture = _open(path)
    try:
        count = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
        width, height = int(capture.get(cv2.CAP_PROP_FRAME_WIDTH)), int(capture.get(cv2.CAP_PROP_FRAME_HEIGHT))
        fps = plausible_fps(capture.get(cv2.CAP_PROP_FPS))
        if count <= 0:  # the container does not say: count the frames
            count = 0
            while capture.grab():
                count += 1
    finally:
        capture.release()
    if count <= 0:
        raise BlurgenError(f"{path}: video has no frames")
    if width <= 0 or height <= 0:
        raise BlurgenError(f"{path}: video has no frame size (damaged header?)")
    return Source(index, source_id, path, kind, count, width, height, fps)


def read_image(path: Path) -> np.ndarray:
    """One frame file as RGB uint8 (gray and 16-bit files are converted)."""
    data = np.fromfile(path, dtype=np.uint8)
    image = cv2.imdecode(data, cv2.IMREAD_COLOR) if data.size else None
    if image is None:
        raise BlurgenError(f"{path}: cannot read this frame image (damaged or not an image)")
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def read_frames(source: Source, start: int, stop: int, step: int = 1) -> Iterator[tuple[int, np.ndarray]]:
    """``(k, frame)`` for kept frames ``k = start .. stop-1``, kept frame k being raw frame ``k * step``.

    Frames are RGB uint8 of the source's size; a frame of another size is a BlurgenError. A
    video that stops decoding before raw frame ``(stop - 1) * step`` raises :class:`TruncatedVideo`
    after yielding the frames that did decode.
    """
    if not 0 <= start <= stop:
        raise ValueError(f"bad frame range {start}..{stop}")
    if start == stop:
        return
    expected = (source.height, source.width, 3)
    if source.kind == "frames":
        for k in range(start, stop):
            name = source.files[k * step]
            frame = read_image(source.path / name)
            if frame.shape != expected:
                raise BlurgenError(f"{source.path / name}: frame is {frame.shape[1]}x{frame.shape[0]}, the "
                                   f"folder's first frame {source.width}x{source.height}: frames of one "
                                   "source must have one size")
            yield k, frame
        return
    capture = _open(source.path)
    try:
        last_raw = (stop - 1) * step
        raw = 0
        while raw <= last_raw:
            wanted = raw >= start * step and raw % step == 0
            # grab() demuxes and decodes; retrieve() converts to BGR: skipped frames skip that.
            ok = capture.grab()
            frame = None
            if ok and wanted:
                ok, frame = capture.retrieve()
                ok = ok and frame is not None
            if not ok:
                k = raw // step
                raise TruncatedVideo(
                    f"{source.path}: decoding stopped at frame {raw} but the container says "
                    f"{source.frame_count} frames (truncated or damaged file): re-encode it, or set "
                    "video.truncated=skip to use the frames that decode", decoded=k)
            if wanted:
                if frame.shape != expected:
                    raise BlurgenError(f"{source.path}: frame {raw} is {frame.shape[1]}x{frame.shape[0]}, the "
                                       f"video's size is {source.width}x{source.height}: frames of one "
                                       "source must have one size")
                yield raw // step, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            raw += 1
    finally:
        capture.release()


def kept_frames(source: Source, step: int) -> int:
    """Frames of the source left after keeping every ``step``-th."""
    return -(-source.frame_count // step)


def cover_crop_box(width: int, height: int, out_w: int, out_h: int) -> tuple[int, int, int, int]:
    """The centred box (x0, y0, x1, y1) of the source with the output's aspect ratio (largest such)."""
    scale = max(out_w / width, out_h / height)
    crop_w = min(width, round(out_w / scale))
    crop_h = min(height, round(out_h / scale))
    x0, y0 = (width - crop_w) // 2, (height - crop_h) // 2
    return x0, y0, x0 + crop_w, y0 + crop_h


def resize_frame(frame: np.ndarray, size: tuple[int, int], transfer: str = "srgb") -> np.ndarray:
    """``frame`` (uint8) scaled to cover ``size`` = (width, height) and centre-cropped, never stretched.

    Resampling mixes light, so it happens in linear light (area averaging when shrinking) and the
    result is re-encoded to 8 bits, as a camera of that size would have delivered it.
    """
    out_w, out_h = size
    h, w = frame.shape[:2]
    if (w, h) == (out_w, out_h):
        return frame
    x0, y0, x1, y1 = cover_crop_box(w, h, out_w, out_h)
    crop = decode(frame[y0:y1, x0:x1], transfer)
    shrink = (x1 - x0) >= out_w and (y1 - y0) >= out_h
    resized = cv2.resize(crop, (out_w, out_h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    return encode(resized, transfer)
