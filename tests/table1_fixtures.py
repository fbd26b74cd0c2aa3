"""A tiny render-schema job with each trajectory's sharp image, as render writes it
(``window_count`` 0, level 1), and its paper Table 1 rows counted by hand.

The paper's Table 1 counts blurred images only (docs/render.md, "Which images Table 1 counts"),
so the expected rows below leave the sharp images out and count them apart. The shared
``release_fixtures`` jobs have no sharp images, so they cannot tell the two apart.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import release_fixtures as rf

from blurgen.shards import ShardWriter

# (split, role, trajectory, object, level, sharp): one sharp image per trajectory, then its blurred ones
PLAN = [
    ("test", "query", 0, "o3", 1, True), ("test", "query", 0, "o3", 1, False),
    ("test", "query", 0, "o3", 2, False), ("test", "query", 0, "o3", 4, False),
    ("test", "database", 1, "o3", 1, True), ("test", "database", 1, "o3", 2, False),
    ("test", "database", 1, "o3", 2, False),
    ("test", "database", 2, "o4", 1, True), ("test", "database", 2, "o4", 3, False),
    ("train", "", 3, "o0", 1, True), ("train", "", 3, "o0", 1, False),
    ("distractor", "", 2 ** 40, "d0", 1, True), ("distractor", "", 2 ** 40, "d0", 5, False),
    ("distractor", "", 2 ** 40, "d0", 1, False),
]

# Counted by hand from PLAN: blurred images per row and level, and each row's sharp images.
BLURRED = {"query": {1: 1, 2: 1, 4: 1}, "database": {2: 2, 3: 1}, "distractor": {1: 1, 5: 1}}
SHARP = {"query": 1, "database": 2, "distractor": 1}
BLURRED_TOTAL_BY_LEVEL = {1: 2, 2: 3, 3: 1, 4: 1, 5: 1}  # 8 blurred images with a row; 4 sharp ones


def write_job(folder: Path, *, coverage: str = "exact", dropped: dict[str, int] | None = None) -> Path:
    """PLAN as one task's shards (one per split), its config naming ``labels.coverage``."""
    config = {"assets": {"objects": None, "backgrounds": None}, "cycles": {"samples": 8},
              "labels": {"coverage": coverage}, "seed": 0}
    for split in dict.fromkeys(row[0] for row in PLAN):
        with ShardWriter(folder, schema="blurgen.render/1", split=split, task_index=0, num_tasks=1, seed=0,
                         config_json=json.dumps(config, sort_keys=True)) as writer:
            for i, (s, role, trajectory, obj, level, sharp) in enumerate(PLAN):
                if s != split:
                    continue
                sample = rf.render_sample(i, split=split, role=role, trajectory=trajectory, obj=obj, level=level,
                                          prefix="render-s0")
                if sharp:  # as render marks it: no window
                    sample.update(window_start=np.int16(-1), window_count=np.int16(0))
                writer.add(sample)
            writer.close(stats={"sources": 1, "samples": 1, "dropped": dropped or {}, "skipped_items": {}})
    return folder
