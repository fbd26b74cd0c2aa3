"""Classical optical-flow estimators behind one small interface, chosen by name from a config.

``blurgen flowpairs video`` needs flow between the first and last frame of each window as
pseudo ground truth (the flow-from-blur paper used pretrained PWC-Net/FlowNet2; blurgen uses
OpenCV's DIS, which runs offline on the CPU with no weights to download). Any object with a
``name`` and ``__call__(first, last) -> (H, W, 2) float32`` is an estimator; register a factory
under a name with :func:`register` to make it selectable as ``flow.estimator``.

Inputs are 8-bit sRGB frames, RGB (H, W, 3) or gray (H, W): DIS matches intensity patches and
was designed and tuned on ordinary 8-bit (gamma-encoded) images, so it gets the frames as they
come from the video, converted to gray. The output follows the project convention: (u, v) =
(dx, dy) in pixels, ``first(x) ≈ last(x + flow(x))``.
"""

from __future__ import annotations

from typing import Callable, Protocol, runtime_checkable

import cv2
import numpy as np

from blurgen.errors import BlurgenError


@runtime_checkable
class FlowEstimator(Protocol):
    """Dense flow from ``first`` to ``last`` (uint8 sRGB, RGB or gray, same size)."""

    name: str

    def __call__(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        ...


def as_gray_u8(image: np.ndarray) -> np.ndarray:
    """An 8-bit RGB or gray frame as a contiguous gray uint8 image (Rec. 601 luma, OpenCV's)."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ValueError(f"flow estimators take uint8 sRGB frames, got {image.dtype}")
    if image.ndim == 3 and image.shape[2] == 3:
        return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.ndim != 2:
        raise ValueError(f"flow estimators take (H, W) or (H, W, 3) frames, got shape {image.shape}")
    return np.ascontiguousarray(image)


_DIS_PRESETS = {"ultrafast": cv2.DISOPTICAL_FLOW_PRESET_ULTRAFAST,
                "fast": cv2.DISOPTICAL_FLOW_PRESET_FAST,
                "medium": cv2.DISOPTICAL_FLOW_PRESET_MEDIUM}


class DisFlow:
    """OpenCV's Dense Inverse Search flow (Kroeger et al., ECCV 2016) with one of its presets.

    ``medium`` (the default) is the preset with variational refinement and the finest patch
    grid of the three; about 0.15 s per 1280x720 pair on 2 cores.
    """

    def __init__(self, preset: str = "medium") -> None:
        if preset not in _DIS_PRESETS:
            raise BlurgenError(f"unknown DIS preset {preset!r}; choose one of {', '.join(_DIS_PRESETS)}")
        self.preset = preset
        self.name = f"dis-{preset}"
        self._dis = cv2.DISOpticalFlow_create(_DIS_PRESETS[preset])

    def __call__(self, first: np.ndarray, last: np.ndarray) -> np.ndarray:
        a, b = as_gray_u8(first), as_gray_u8(last)
        if a.shape != b.shape:
            raise ValueError(f"frames differ in size: {a.shape} and {b.shape}")
        return np.asarray(self._dis.calc(a, b, None), dtype=np.float32)

    def __getstate__(self) -> dict:  # the OpenCV object does not pickle; rebuild it instead
        return {"preset": self.preset}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["preset"])


_REGISTRY: dict[str, Callable[[], FlowEstimator]] = {
    f"dis-{preset}": (lambda preset=preset: DisFlow(preset)) for preset in _DIS_PRESETS
}


def register(name: str, factory: Callable[[], FlowEstimator]) -> None:
    """Make ``factory`` selectable as estimator ``name`` (replacing one of that name)."""
    _REGISTRY[name] = factory


def estimator_names() -> tuple[str, ...]:
    """Names :func:`make_estimator` accepts, sorted."""
    return tuple(sorted(_REGISTRY))


def make_estimator(name: str) -> FlowEstimator:
    """A new estimator by registered name (e.g. ``dis-medium``)."""
    factory = _REGISTRY.get(name)
    if factory is None:
        raise BlurgenError(f"unknown flow estimator {name!r}; available: {', '.join(estimator_names())}")
    return factory()
