"""Blender's side of the data flow: the request (which renders a batch needs) and running it.

The job format, the conventions and the per-item output are documented in
``blender_scripts/render_trajectories.py`` (the script that runs inside Blender); the numbers
and words both sides share are in ``blender_scripts/contract.py``. :func:`blender_job` turns
prepared items into that job, asking only for the renders the configured windows use
(:func:`needed_renders`). :func:`render_batch` launches the script: with a ``blender`` binary
when one is named, else with this Python when it has the ``bpy`` wheel. One process per batch isolates crashes and returns Blender's memory after
every batch; a process that crashes (non-zero exit, signal) or falls silent for longer than
``timeout_s`` is killed and run once more on the items that have no output yet.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from blurgen._blender_scripts.contract import ERROR_SUFFIX, FATAL, ITEM_DONE, ITEM_ERROR, SCRIPT_NAME
from blurgen.atomic import atomic_write_text
from blurgen.errors import BlurgenError
from blurgen.render.compose import blurred_windows
from blurgen.render.config import RenderConfig
from blurgen.render.plan import Plan
from blurgen.render.prepare import PreparedItem
from blurgen.resources import blender_scripts_dir

LOG_TAIL_LINES = 3
MAX_IDS_SHOWN = 20
BPY_HINT = ("install Blender as a Python module (pip install bpy==5.0.1, needs Python 3.11) "
            "or pass --blender PATH to a Blender binary")


class RenderError(BlurgenError):
    """Blender failed on a batch twice (crash, hang) or cannot run the job at all."""


@dataclasses.dataclass(frozen=True)
class RenderedItem:
    """An item Blender rendered; its arrays are in the ``.npz`` at ``path``."""

    item_id: int
    path: Path

    def load(self) -> dict[str, np.ndarray]:
        """The item's arrays: ``layers``, ``sharp``, ``silhouettes`` (``windows``, ``coords``) as asked."""
        with np.load(self.path) as data:
            return {name: data[name] for name in data.files}


@dataclasses.dataclass(frozen=True)
class ItemFailure:
    """An item Blender refused (bad mesh, missing texture...), with the one-line reason."""

    item_id: int
    reason: str


def needed_renders(config: RenderConfig) -> tuple[list[int], list[int]]:
    """The sub-intervals (a contiguous run) and silhouette instants the windows use.

    Rendering only these is most of blurgen's speed: centred windows k = 1..10 need sub-intervals
    6..15 (10 of 23) and 11 silhouettes (the windows' endpoints), not all 23 and 24. With
    ``images.flow`` the object-coordinate layers are rendered at the silhouette instants too.
    """
    windows = blurred_windows(config.images.max_window, config.images.windows)
    first = min(s for s, _ in windows)  # max_window >= 1: never empty
    last = max(s + c for s, c in windows)
    return list(range(first, last)), sorted({t for s, c in windows for t in (s, s + c)})


def blender_job(config: RenderConfig, plan: Plan, prepared: Sequence[PreparedItem], work: Path,
                threads: int) -> dict[str, Any]:
    """The JSON job one Blender process renders (contract: blender_scripts/render_trajectories.py)."""
    c, cy = config.camera, config.cycles
    layers, silhouettes = needed_renders(config)
    return {
        "width": c.width, "height": c.height,
        "camera": {"focal_mm": c.focal_mm, "sensor_width_mm": c.sensor_width_mm},
        "cycles": {"device": cy.device, "samples": cy.samples, "adaptive_threshold": cy.adaptive_threshold,
                   "denoise": cy.denoise, "max_bounces": cy.max_bounces, "threads": threads,
                   "pixel_filter_width": cy.pixel_filter_width},
        "silhouette_samples": cy.silhouette_samples,
        "items": [{
            "item_id": p.item.item_id,
            "mesh": str(plan.objects.path_of(p.item.object_id)),
            "out": str(work / f"item-{p.item.item_id:013d}.npz"),
            **p.trajectory.to_job(),
            **p.normalisation.to_job(),
            "seed": p.cycles_seed,
            "renders": {"sub_intervals": layers, "sharp": config.images.sharp, "silhouettes": silhouettes,
                        # the flow's object-coordinate layers, at the windows' endpoints
                        **({"coords": silhouettes} if config.images.flow else {}),
                        # the triangles of the labels' exact coverage (blurgen/render/coverage.py)
                        **({"mesh": True} if config.labels.coverage == "exact" else {})},
        } for p in prepared],
    }


def script_path() -> Path:
    """The Blender-side script, from the installed package or the source tree."""
    return blender_scripts_dir() / SCRIPT_NAME


def find_blender(blender: str | None = None) -> list[str]:
    """The command prefix that runs the script; the job path is appended to it.

    ``blender`` (a path or a name on PATH) gives ``[blender, -b, --factory-startup, --python,
    SCRIPT, --]``; without it, this Python runs the script when it can import ``bpy``.
    """
    script = str(script_path())
    if blender:
        exe = shutil.which(blender) or (blender if os.path.isfile(blender) else None)
        if exe is None or not os.access(exe, os.X_OK):
            raise BlurgenError(f"Blender binary not found or not executable: {blender}")
        return [exe, "-b", "--factory-startup", "--python", script, "--"]
    if importlib.util.find_spec("bpy") is not None:  # find_spec does not import it (seconds)
        return [sys.executable, script]
    raise BlurgenError(f"no Blender: this Python ({sys.executable}) cannot import bpy; {BPY_HINT}")


@dataclasses.dataclass
class _Attempt:
    returncode: int | None = None
    timed_out: bool = False
    cancelled: bool = False
    fatal: str | None = None

    def describe(self, timeout_s: float) -> str:
        if self.timed_out:
            return f"hung (no progress for {timeout_s:g} s, killed)"
        if self.returncode is not None and self.returncode < 0:
            try:
                name = signal.Signals(-self.returncode).name
            except ValueError:
                name = f"signal {-self.returncode}"
            return f"was killed by {name}"
        if self.returncode:
            return f"exited with status {self.returncode}"
        return "exited without rendering them"


def render_batch(job: dict[str, Any], workdir: Path, *, blender: str | None = None,
                 timeout_s: float = 600, retries: int = 1,
                 on_item: Callable[[int], None] | None = None,
                 cancel: threading.Event | None = None) -> dict[int, RenderedItem | ItemFailure]:
    """Render a batch in one Blender process; every item gets a RenderedItem or an ItemFailure.

    ``timeout_s`` bounds the time without progress (start-up plus the first item, then between
    finished items), so big batches need no bigger timeout. A crashed or hung process is run
    again ``retries`` times on the items without output; then :class:`RenderError` names those
    items and the log (Blender's stderr, ``workdir/blender-<attempt>.log``). Outputs left from
    an earlier run at the items' ``out`` paths are removed first. ``on_item(item_id)`` is called
    as each item finishes (rendered or failed). Setting ``cancel`` (from another thread) kills
    the process within half a second and raises :class:`RenderError` without a retry.
    """
    if retries < 0:
        raise ValueError("retries must be >= 0")
    if not job.get("items"):
        return {}
    cmd = find_blender(blender)
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    items = [_absolute(item) for item in job["items"]]
    for item in items:
        for stale in (Path(item["out"]), _error_path(item)):
            stale.unlink(missing_ok=True)
    results: dict[int, RenderedItem | ItemFailure] = {}
    pending, failed = items, ""
    for attempt in range(1, retries + 2):
        log = workdir / f"blender-{attempt}.log"
        job_path = workdir / f"job-{attempt}.json"
        atomic_write_text(job_path, json.dumps({**job, "items": pending}, indent=1), durable=False)
        outcome = _run(cmd + [str(job_path)], log, timeout_s, on_item, cancel)
        if outcome.cancelled:
            raise RenderError("rendering cancelled")
        pending = [item for item in pending if not _collect(item, results)]
        if outcome.fatal:
            raise RenderError(f"Blender cannot run the job: {outcome.fatal} (log: {log})")
        if not pending:
            return results
        failed = outcome.describe(timeout_s)
    ids = ", ".join(str(item["item_id"]) for item in pending[:MAX_IDS_SHOWN])
    if len(pending) > MAX_IDS_SHOWN:
        ids += f" and {len(pending) - MAX_IDS_SHOWN} more"
    attempts = f"{retries + 1} attempt{'s' if retries else ''}"
    raise RenderError(f"Blender {failed} on items {ids} ({attempts}); last lines of {log}: {_tail(log)}")


def _absolute(item: dict[str, Any]) -> dict[str, Any]:
    """The item with absolute paths: the child's working directory is not ours to rely on."""
    return {**item, "mesh": str(Path(item["mesh"]).absolute()), "out": str(Path(item["out"]).absolute())}


def _error_path(item: dict[str, Any]) -> Path:
    return Path(str(item["out"]) + ERROR_SUFFIX)


def item_result(item: dict[str, Any]) -> RenderedItem | ItemFailure | None:
    """The item's result as it lies on disk (its .npz or its error report), None when it has none.

    Blender writes either file before it reports the item, so this is safe to call from an
    ``on_item`` callback while the rest of the batch renders.
    """
    item_id = int(item["item_id"])
    out, error = Path(item["out"]), _error_path(item)
    if out.is_file():
        return RenderedItem(item_id, out)
    if error.is_file():
        try:
            reason = str(json.loads(error.read_text("utf-8"))["reason"])
        except (OSError, ValueError, KeyError, TypeError):
            reason = "unreadable error report"
        return ItemFailure(item_id, reason)
    return None


def _collect(item: dict[str, Any], results: dict[int, RenderedItem | ItemFailure]) -> bool:
    """Record the item's result if it has one on disk; False when it still has none."""
    result = item_result(item)
    if result is not None:
        results[result.item_id] = result
    return result is not None


def _run(cmd: list[str], log: Path, timeout_s: float, on_item: Callable[[int], None] | None,
         cancel: threading.Event | None = None) -> _Attempt:
    """Run one Blender process to its end, or kill it after ``timeout_s`` without progress."""
    outcome = _Attempt()
    with open(log, "wb") as log_fh:
        # A new session: a kill must reach the whole process group (a blender binary's children).
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log_fh,
                                start_new_session=True, text=True, encoding="utf-8", errors="replace")
        lines: queue.Queue[str | None] = queue.Queue()
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True)
        reader.start()
        deadline = time.monotonic() + timeout_s
        try:
            while True:
                if cancel is not None and cancel.is_set():
                    outcome.cancelled = True  # the finally below kills the process group
                    break
                try:  # wake up at least twice a second to notice a cancel
                    line = lines.get(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
                except queue.Empty:
                    if time.monotonic() >= deadline:
                        outcome.timed_out = True
                        break
                    continue
                if line is None:  # stdout closed: the process is exiting
                    break
                if _handle(line, outcome, on_item):
                    deadline = time.monotonic() + timeout_s
            if not outcome.timed_out:
                try:
                    proc.wait(timeout=max(1.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    outcome.timed_out = True
        finally:
            if proc.poll() is None:
                _kill(proc)
            reader.join(timeout=5)
        outcome.returncode = proc.returncode
    return outcome


def _pump(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


def _handle(line: str, outcome: _Attempt, on_item: Callable[[int], None] | None) -> bool:
    """Act on one protocol line; True when it reports progress."""
    kind, _, rest = line.strip().partition(" ")
    if kind == FATAL:
        outcome.fatal = rest
        return False
    if kind in (ITEM_DONE, ITEM_ERROR):
        if on_item is not None:
            try:
                item_id = int(rest.split(" ", 1)[0])
            except ValueError:
                return True
            on_item(item_id)
        return True
    return False


def _kill(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    proc.wait()


def _tail(log: Path) -> str:
    try:
        text = log.read_text("utf-8", errors="replace")
    except OSError:
        return "(no log)"
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    tail = " | ".join(lines[-LOG_TAIL_LINES:]) or "(empty)"
    return tail if len(tail) <= 400 else "..." + tail[-397:]
