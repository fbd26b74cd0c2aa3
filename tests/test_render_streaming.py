"""The streaming hand-over between the Blender thread and the shard writer, without Blender."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

import blurgen.render.pipeline as pipeline
from blurgen.config import resolve_config
from blurgen.render.blender import ItemFailure, RenderedItem, RenderError
from blurgen.render.config import RenderConfig

CONFIG = resolve_config(RenderConfig, "render", preset="demo")


def job_for(folder, n):
    return {"items": [{"item_id": 10 + i, "out": str(folder / f"item-{i}.npz")} for i in range(n)]}


def fake_blender(behaviour):
    """A render_batch stand-in: ``behaviour(job, on_item, cancel)`` plays the Blender process."""
    calls = []

    def render_batch(job, folder, *, blender=None, timeout_s=600, on_item=None, cancel=None):
        calls.append(job)
        return behaviour(job, on_item, cancel)
    return render_batch, calls


def finish(item, failed=False):
    if failed:
        with open(item["out"] + ".error.json", "w") as fh:
            json.dump({"item_id": item["item_id"], "reason": "mesh has no faces"}, fh)
        return ItemFailure(item["item_id"], "mesh has no faces")
    np.savez(item["out"], layers=np.zeros((1, 2, 2, 4), np.float32))
    return RenderedItem(item["item_id"], Path(item["out"]))


# A generous bound on a wait that only a broken hand-over would reach: the tests wait on events,
# and this only turns a deadlock into a failure instead of a hung suite.
DEADLOCK_S = 120


def test_items_arrive_in_job_order_while_blender_still_renders(tmp_path, monkeypatch):
    handed_over = [threading.Event() for _ in range(3)]
    missed = []

    def behaviour(job, on_item, cancel):
        results = {}
        for n, item in enumerate(job["items"]):
            results[item["item_id"]] = finish(item, failed=(n == 1))
            on_item(item["item_id"])
            # "Blender" renders the next item only once the writer has this one: a hand-over
            # that waited for the end of the batch never gets here
            if n < len(job["items"]) - 1 and not handed_over[n].wait(DEADLOCK_S):
                missed.append(n)
        return results

    fake, calls = fake_blender(behaviour)
    monkeypatch.setattr(pipeline, "render_batch", fake)
    job = job_for(tmp_path, 3)
    got = []
    for n, (p, result) in enumerate(pipeline._render_streaming(["p0", "p1", "p2"], job, tmp_path, CONFIG,
                                                               None, None)):
        got.append((p, type(result).__name__))
        handed_over[n].set()
    assert got == [("p0", "RenderedItem"), ("p1", "ItemFailure"), ("p2", "RenderedItem")]
    assert missed == [] and len(calls) == 1


def test_an_error_while_writing_stops_blender_at_once(tmp_path, monkeypatch):
    stopped = []

    def behaviour(job, on_item, cancel):
        first = job["items"][0]
        finish(first)
        on_item(first["item_id"])
        # Blender would go on rendering the batch; only the cancel event ends this wait early
        stopped.append(cancel.wait(DEADLOCK_S))
        raise RenderError("rendering cancelled")

    fake, _ = fake_blender(behaviour)
    monkeypatch.setattr(pipeline, "render_batch", fake)
    with pytest.raises(ValueError, match="disk trouble"):
        for _ in pipeline._render_streaming(["p0", "p1"], job_for(tmp_path, 2), tmp_path, CONFIG, None, None):
            raise ValueError("disk trouble")
    assert stopped == [True]  # cancelled by the error, not released by the deadlock bound


def test_a_failed_batch_surfaces_its_render_error(tmp_path, monkeypatch):
    def behaviour(job, on_item, cancel):
        raise RenderError("Blender was killed by SIGSEGV on items 10, 11 (2 attempts)")

    fake, _ = fake_blender(behaviour)
    monkeypatch.setattr(pipeline, "render_batch", fake)
    with pytest.raises(RenderError, match="SIGSEGV"):
        list(pipeline._render_streaming(["p0", "p1"], job_for(tmp_path, 2), tmp_path, CONFIG, None, None))
