"""Global photometric effects: exposure and sensor noise over the whole frame.

They are applied to the blurred image and to the sharp image alike, with the same noise
realisation, so that the pair still differs only where blur was applied: an effect that touched
only the blurred pixels (or only the image) would reveal the mask to a detector.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def apply_photometric(rng: np.random.Generator, images: list[np.ndarray], exposure_ev: tuple[float, float],
                      noise: tuple[float, float]) -> tuple[list[np.ndarray], dict[str, Any]]:
    """Scale exposure by 2**ev and add shot noise ``sigma * sqrt(x)`` (linear light) to each image.

    Returns the changed images (float32, clipped to [0, 1]) and the drawn parameters.
    """
    ev = float(rng.uniform(*exposure_ev))
    sigma = float(rng.uniform(*noise))
    normal = rng.standard_normal(images[0].shape).astype(np.float32)
    gain = np.float32(2.0 ** ev)
    out = []
    for image in images:
        exposed = np.clip(image * gain, 0.0, 1.0)
        out.append(np.clip(exposed + np.float32(sigma) * np.sqrt(exposed) * normal, 0.0, 1.0).astype(np.float32))
    return out, {"exposure_ev": ev, "noise_sigma": sigma}
