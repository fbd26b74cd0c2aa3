"""The one source of randomness in blurgen.

Every work item draws from its own generators seeded by ``SeedSequence([seed, item_id, *stream])``
(``stream``: words naming a sub-stream per concern, e.g. render's trajectory, background and
Cycles seed), so a sample depends only on the config seed and its global id: re-sharding a job
over a different number of tasks, or re-running one task, does not change a single sample. Nothing in the package
may seed or draw from a process-wide generator (numpy's or Python's module-level functions);
tests/test_rng.py greps for it.
"""

import contextlib
from typing import Iterator

import numpy as np


def item_rng(seed: int, item_id: int, *stream: int) -> np.random.Generator:
    """Generator for work item ``item_id`` of a job seeded with ``seed``.

    ``stream`` names independent sub-streams of one item (e.g. trajectory vs. background
    choice), so adding draws to one part of a generator does not shift the others.
    """
    if seed < 0 or item_id < 0 or any(s < 0 for s in stream):
        raise ValueError(f"seed, item id and stream keys must be >= 0, got {seed}, {item_id}, {stream}")
    return np.random.default_rng(np.random.SeedSequence([seed, item_id, *stream]))


@contextlib.contextmanager
def seeded_torch(seed: int) -> Iterator[None]:
    """Seed torch's process-wide generator for the block only.

    torch's module initialisers (a model's initial weights) draw from that generator and take no
    generator argument. Inside this block it starts from ``seed``; ``fork_rng`` puts the previous
    state back afterwards, so nothing outside sees the change. The only sanctioned
    seeding of torch's global generator in blurgen (tests/test_rng.py).
    """
    import torch

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield
