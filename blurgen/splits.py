"""Splitting a job's sources (photos, videos, pairs) into train / val / test.

Every generator splits by source, never by sample, so that no photo or video gives samples to
two splits (the papers' seeded shuffles); render splits by object within each category
(blurgen.render.plan) for the same reason.
"""

from __future__ import annotations

from typing import Sequence

from blurgen.errors import ConfigError
from blurgen.rng import item_rng

STREAM_SPLIT = 1  # the random stream of item 0 that shuffles the sources


def split_sources(seed: int, source_ids: Sequence[str], val: float, test: float) -> dict[str, str]:
    """source id -> 'train', 'val' or 'test' by a seeded shuffle.

    ``round(n * share)`` sources each; a split with a positive share gets at least one source
    while that leaves train at least one (so a handful of sources still fills every split).
    """
    if val + test > 1.0 + 1e-9:
        raise ConfigError(f"split.val + split.test is {val + test:g}; it must be at most 1")
    n = len(source_ids)
    n_val, n_test = round(n * val), round(n * test)
    train_wanted = val + test < 1.0
    if val > 0 and n_val == 0 and n - n_test - (1 if train_wanted else 0) >= 1:
        n_val = 1
    if test > 0 and n_test == 0 and n - n_val - (1 if train_wanted else 0) >= 1:
        n_test = 1
    while train_wanted and n_val + n_test >= n and n_val + n_test > 0 and n > 1:
        if n_test >= n_val:
            n_test -= 1
        else:
            n_val -= 1
    order = item_rng(seed, 0, STREAM_SPLIT).permutation(n)
    split = {}
    for rank, i in enumerate(order):
        split[source_ids[i]] = "val" if rank < n_val else "test" if rank < n_val + n_test else "train"
    return split
