"""Training curves drawn with OpenCV (blurgen.viz.plot)."""

from __future__ import annotations

import numpy as np

from blurgen.viz.plot import PALETTE, line_chart, nice_ticks


def test_ticks_are_round_steps_covering_the_range():
    assert nice_ticks(0, 10) == [0, 2, 4, 6, 8, 10]
    assert np.allclose(nice_ticks(0.13, 0.71), [0.0, 0.2, 0.4, 0.6, 0.8])  # step 0.2 >= 0.58 / 5
    assert nice_ticks(3, 3)[0] <= 3 <= nice_ticks(3, 3)[-1]  # a flat series still gets an axis
    assert nice_ticks(float("nan"), 1) == []


def test_each_series_is_drawn_in_its_colour_and_rises_where_its_values_rise():
    image = line_chart({"up": ([0, 1, 2], [0, 1, 2]), "flat": ([0, 1, 2], [1, 1, 1])}, title="t", xlabel="x",
                       ylabel="y", size=(320, 200))
    assert image.shape == (200, 320, 3) and image.dtype == np.uint8
    up = np.all(image == PALETTE[0], axis=2)
    flat = np.all(image == PALETTE[1], axis=2)
    assert up.sum() > 50 and flat.sum() > 50
    legend = slice(0, 70)  # the legend's colour swatches sit in the top rows
    up[legend], flat[legend] = False, False
    ys, xs = np.nonzero(up)
    assert np.corrcoef(xs, -ys)[0, 1] > 0.95  # higher on the right (image rows grow downwards)
    fy, _ = np.nonzero(flat)
    assert fy.max() - fy.min() <= 3  # the flat series is one horizontal line
