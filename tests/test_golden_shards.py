"""The demo jobs of every generator write exactly the data that an earlier version of the code wrote.

``tests/golden/<job>/`` holds shards written by that version (``python tests/golden/jobs.py``);
this test runs the same jobs now and compares every dataset of every shard, value for value.
Root attributes (version, config JSON) may change; the samples may not. Renders depend on
Cycles' output, which is reproducible for one CPU kind and Blender build (docs/render.md).
"""

from __future__ import annotations

import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "golden"))
from jobs import GOLDEN, JOBS, write  # noqa: E402


def datasets(path: Path) -> dict[str, np.ndarray]:
    with h5py.File(path, "r") as f:
        return {name: f[name][()] for name in f}


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow) if n.startswith("render")
                                  else n for n in JOBS])
def test_job_writes_the_golden_datasets(name, tmp_path):
    golden = sorted((GOLDEN / name).glob("*.h5"))
    assert golden, f"no golden shards for {name}: run python tests/golden/jobs.py {name}"
    write(name, tmp_path / "out", tmp_path / "work")
    ours = sorted((tmp_path / "out").glob("*.h5"))
    assert [p.name for p in ours] == [p.name for p in golden]
    for mine, theirs in zip(ours, golden):
        a, b = datasets(mine), datasets(theirs)
        assert sorted(a) == sorted(b), mine.name
        for field in b:
            assert a[field].dtype == b[field].dtype and a[field].shape == b[field].shape, (mine.name, field)
            nan_ok = b[field].dtype.kind in "fc"  # NaN marks e.g. an unknown fps; equal NaNs are equal
            assert np.array_equal(a[field], b[field], equal_nan=nan_ok), (mine.name, field)
