"""Tiny high-frame-rate videos and frame folders for the flowpairs tests, made on the spot.

Frames are integer-offset crops of one smooth random texture, so consecutive frames differ by
an exact translation: with the crop moving by (dx, dy) per frame, the content moves by
(-dx, -dy) per frame. Videos are FFV1 (lossless) in AVI, which headless OpenCV writes and
reads back bit-exactly, so tests can compare decoded frames with the frames written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import cv2
import numpy as np

W, H = 64, 48


def texture(seed: int, w: int = 200, h: int = 160) -> np.ndarray:
    """A smooth RGB uint8 texture with detail at a few scales and its own colour cast."""
    rng = np.random.default_rng(seed)
    channels = []
    for c in range(3):
        image = np.zeros((h, w), np.float32)
        for sigma, weight in ((1.5, 0.3), (4.0, 0.4), (10.0, 0.3)):
            layer = cv2.GaussianBlur(rng.standard_normal((h, w)).astype(np.float32), (0, 0), sigma)
            image += weight * layer / layer.std()
        channels.append(image)
    tint = rng.uniform(60, 190, 3)
    return np.clip(np.dstack(channels) * 35 + tint, 0, 255).astype(np.uint8)


def moving_frames(n: int, *, dx: int = 1, dy: int = 0, seed: int = 0, cut_at: int | None = None,
                  w: int = W, h: int = H) -> list[np.ndarray]:
    """``n`` RGB frames; frame i is the crop at (10 + i dx, 10 + i dy). From ``cut_at`` on the
    frames come from another texture (a scene cut between frames cut_at - 1 and cut_at)."""
    a, b = texture(seed), texture(seed + 1000)
    frames = []
    for i in range(n):
        src = b if cut_at is not None and i >= cut_at else a
        x, y = 10 + i * dx, 10 + i * dy
        frames.append(np.ascontiguousarray(src[y:y + h, x:x + w]))
    return frames


def write_video(path: Path, frames: Sequence[np.ndarray], fps: float = 240.0, fourcc: str = "FFV1") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    h, w = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*fourcc), fps, (w, h))
    assert writer.isOpened()
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def write_folder(folder: Path, frames: Sequence[np.ndarray], pattern: str = "frame{}.png") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        assert cv2.imwrite(str(folder / pattern.format(i)), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    return folder
