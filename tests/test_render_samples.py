"""From a rendered item to samples, without Blender: which silhouettes the appearance filter
compares, and images dropped because nothing is left of their support after erosion.

The "rendered" arrays are drawn here by hand, so each expected drop is known in advance.
"""

from __future__ import annotations

from collections import Counter

import numpy as np

from blurgen.config import resolve_config
from blurgen.render.camera import camera_of
from blurgen.render.config import RenderConfig
from blurgen.render.normalise import IDENTITY
from blurgen.render.plan import WorkItem
from blurgen.render.prepare import PreparedItem
from blurgen.render.samples import item_samples
from blurgen.render.trajectory import sample_trajectory

H, W = 48, 64


def config_of(*sets: str) -> RenderConfig:
    # labels from the layers' own alpha, so that the tests can draw it; the exact coverage the
    # default uses is tested in test_render_coverage.py
    return resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"camera.width={W}", f"camera.height={H}", "images.max_window=4", "labels.erosion_px=1",
        "labels.coverage=render", *sets])


def prepared(config: RenderConfig) -> PreparedItem:
    trajectory = sample_trajectory(np.random.default_rng(0), camera_of(config))
    return PreparedItem(WorkItem(5, "obj", "cat", "train", "", 0), trajectory, "bg",
                        np.zeros((H, W, 3), np.float32), cycles_seed=1, normalisation=IDENTITY)


def square(top: int, left: int, height: int, width: int) -> np.ndarray:
    mask = np.zeros((H, W), bool)
    mask[top:top + height, left:left + width] = True
    return mask


def rendered(alpha: np.ndarray, silhouettes: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """What Blender gives for centred windows k = 1..4: sub-intervals 9..12, their endpoints 9..13."""
    layer = np.zeros((H, W, 4), np.float32)
    layer[..., 3] = alpha
    layer[..., :3] = alpha[..., None] * 0.5
    instants = sorted(silhouettes)
    return {"layers": np.stack([layer] * 4), "layer_indices": np.arange(9, 13, dtype=np.int32), "sharp": layer,
            "silhouettes": np.stack([silhouettes[t] for t in instants]),
            "silhouette_instants": np.array(instants, np.int32)}


def test_the_appearance_filter_compares_the_silhouettes_at_each_windows_first_and_last_instants():
    # centred windows: k=1 spans instants 11..12, k=2 10..12, k=3 10..13, k=4 9..13. Instant 13
    # shows a bar, every other instant a 10 x 10 square (placed anywhere: the IoU aligns centroids).
    # Square against bar, aligned: 20 / (100 + 80 - 20) = 0.125 < 0.2.
    silhouettes = {t: square(5 + t, 2 * t, 10, 10) for t in range(9, 13)}
    silhouettes[13] = square(20, 10, 2, 40)
    config = config_of()
    dropped: Counter = Counter()
    kept = list(item_samples(config, prepared(config), rendered(square(10, 10, 20, 20).astype(np.float32),
                                                                silhouettes), dropped))
    assert [int(s["window_count"]) for s in kept] == [0, 1, 2]
    assert [int(s["window_start"]) for s in kept] == [-1, 11, 10]
    assert dropped == {"appearance_change": 2}


def test_an_image_with_nothing_left_after_erosion_is_dropped_as_no_support():
    # a bar 2 px high loses every pixel to a 3 x 3 erosion; 2 x 40 px is 2.6 % of the image, so
    # the coverage filter keeps it: only Eq. 5 being undefined can drop it
    thin = square(20, 10, 2, 40).astype(np.float32)
    still = {t: square(20, 10, 2, 40) for t in range(9, 14)}
    config = config_of()
    dropped: Counter = Counter()
    assert list(item_samples(config, prepared(config), rendered(thin, still), dropped)) == []
    assert dropped == {"no_support": 5}
    kept = list(item_samples(config_of("labels.erosion_px=0"), prepared(config), rendered(thin, still),
                             Counter()))
    assert len(kept) == 5 and all(float(s["blur_severity"]) == 0.0 for s in kept)  # opaque: BS 0


def test_an_object_cut_by_the_frame_is_labelled_truncated_and_dropped_only_when_asked():
    still = {t: square(10, 44, 20, 20) for t in range(9, 14)}
    cut = square(10, 44, 20, 20).astype(np.float32)   # columns 44..63: touches the right border
    inside = square(10, 40, 20, 20).astype(np.float32)  # columns 40..59: four pixels short of it
    config = config_of()
    kept = list(item_samples(config, prepared(config), rendered(cut, still), Counter()))
    assert len(kept) == 5 and all(bool(s["truncated"]) for s in kept)
    assert not any(bool(s["truncated"]) for s in item_samples(config, prepared(config), rendered(inside, still),
                                                               Counter()))
    dropping = config_of("labels.drop_truncated=true")
    dropped: Counter = Counter()
    assert list(item_samples(dropping, prepared(dropping), rendered(cut, still), dropped)) == []
    assert dropped == {"truncated": 5}
    assert len(list(item_samples(dropping, prepared(dropping), rendered(inside, still), Counter()))) == 5


def test_labels_max_level_drops_the_images_above_it_after_the_papers_filters():
    # a 20 x 20 square of alpha 0.35 everywhere: BS = 1 - 0.35 = 0.65 (Eq. 5), BL = ceil(6.5) = 7 (Eq. 6)
    faint = (square(10, 10, 20, 20) * np.float32(0.35)).astype(np.float32)
    still = {t: square(10, 10, 20, 20) for t in range(9, 14)}
    keeping = config_of("labels.max_level=7")
    kept = list(item_samples(keeping, prepared(keeping), rendered(faint, still), Counter()))
    assert len(kept) == 5 and {int(s["blur_level"]) for s in kept} == {7}
    capped = config_of("labels.max_level=6")
    dropped: Counter = Counter()
    assert list(item_samples(capped, prepared(capped), rendered(faint, still), dropped)) == []
    assert dropped == {"above_max_level": 5}
    # the paper's filters come first: a bar with nothing left after erosion stays 'no_support'
    thin = square(20, 10, 2, 40).astype(np.float32) * np.float32(0.35)
    dropped = Counter()
    list(item_samples(capped, prepared(capped), rendered(thin, {t: square(20, 10, 2, 40) for t in range(9, 14)}),
                      dropped))
    assert dropped == {"no_support": 5}
