"""Reading a render job: the command line, the job's settings and each item, checked and normalised.

Standard library only (runs with plain Python too, which is how the tests check it). A job whose
settings are wrong cannot run at all (:class:`JobError`, reported as ``blurgen-fatal``); an item
whose values are wrong is reported on its own (:class:`ItemError`) and the next item goes on.
The job format is documented in render_trajectories.py.
"""

from __future__ import annotations

import json
import math

from contract import INSTANTS, SUB_INTERVALS

DEFAULT_LIGHTING = {"ambient": 0.5, "sun_strength": 3.0, "sun_direction": [0.35, -0.55, -0.75]}
DEVICES = ("CPU", "GPU")


class ItemError(Exception):
    """An item that cannot be rendered because of its inputs (reported, then the next item)."""


class JobError(Exception):
    """A job that cannot run at all (reported as blurgen-fatal, no retry helps)."""


def job_path_from_argv(argv: list[str]) -> str:
    """The job path: the first argument after ``--`` (blender binary), else argv[1] (bpy)."""
    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if len(args) != 1:
        raise JobError(f"expected one argument, the job JSON path; got {args!r}")
    return args[0]


def read_job(path: str) -> dict:
    """The job JSON as a dict (JobError when it cannot be read or is not an object)."""
    try:
        with open(path, encoding="utf-8") as fh:
            job = json.load(fh)
    except (OSError, ValueError) as exc:
        raise JobError(f"cannot read job {path}: {exc}") from None
    if not isinstance(job, dict):
        raise JobError(f"cannot read job {path}: not a JSON object")
    return job


def parse_settings(job: dict) -> dict:
    """The job-wide settings with their defaults, as the scene set-up uses them."""
    try:
        cyc, cam = dict(job.get("cycles", {})), dict(job.get("camera", {}))
        settings = {
            "width": int(job["width"]), "height": int(job["height"]),
            "camera": {"focal_mm": float(cam.get("focal_mm", 35.0)),
                       "sensor_width_mm": float(cam.get("sensor_width_mm", 36.0))},
            "cycles": {"device": str(cyc.get("device", "CPU")).upper(), "samples": int(cyc.get("samples", 16)),
                       "adaptive_threshold": float(cyc.get("adaptive_threshold", 0.0)),
                       "denoise": bool(cyc.get("denoise", False)), "max_bounces": int(cyc.get("max_bounces", 4)),
                       "pixel_filter_width": float(cyc.get("pixel_filter_width", 1.5)),
                       "threads": int(cyc.get("threads", 0))},
            "silhouette_samples": int(job.get("silhouette_samples", 1)),
        }
        lighting = {**DEFAULT_LIGHTING, **job.get("lighting", {})}
        settings["lighting"] = {"ambient": float(lighting["ambient"]),
                                "sun_strength": float(lighting["sun_strength"]),
                                "sun_direction": [float(x) for x in lighting["sun_direction"]]}
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"bad job settings: {type(exc).__name__}: {exc}") from None
    if settings["cycles"]["device"] not in DEVICES:
        raise JobError(f"cycles.device must be CPU or GPU, not {settings['cycles']['device']!r}")
    sun = settings["lighting"]
    if sun["sun_strength"] > 0 and (len(sun["sun_direction"]) != 3 or not any(sun["sun_direction"])):
        raise JobError("lighting.sun_direction must be 3 numbers, not all zero")
    return settings


def parse_item(item: dict) -> dict:
    """Checked copy of an item's pose and render request (ItemError if malformed).

    ``axis`` and ``base_quat`` are checked but not normalised: Blender's mathutils normalises
    them in its own (single) precision, as the renders always have.
    """
    positions = item.get("positions")
    if not isinstance(positions, list) or len(positions) != INSTANTS:
        raise ItemError(f"positions must hold {INSTANTS} points")
    positions = [_vector(p, 3, "each position") for p in positions]
    angles = _vector(item.get("angles"), INSTANTS, "angles")
    axis = _vector(item.get("axis"), 3, "axis")
    if math.hypot(*axis) < 1e-12:
        if any(a != 0 for a in angles):
            raise ItemError("axis must not be zero when the object rotates")
        axis = [0.0, 0.0, 1.0]
    quat = _vector(item.get("base_quat"), 4, "base_quat")
    if math.hypot(*quat) < 1e-12:
        raise ItemError("base_quat must not be zero")
    try:
        scale = float(item.get("scale", 1.0))
    except (TypeError, ValueError):
        raise ItemError("scale must be a positive number") from None
    if not (math.isfinite(scale) and scale > 0):
        raise ItemError("scale must be a positive number")
    renders = dict(item.get("renders", {}))
    windows = []
    for w in renders.get("windows", []) or []:
        try:
            start, count = (int(x) for x in w)
        except (TypeError, ValueError):
            raise ItemError(f"window {w!r} is not [start, count]") from None
        if count < 1 or start < 0 or start + count > SUB_INTERVALS:
            raise ItemError(f"window {[start, count]} is not inside instants 0..{SUB_INTERVALS}")
        windows.append((start, count))
    return {"positions": positions, "angles": angles, "axis": axis, "base_quat": quat, "scale": scale,
            "normalise": parse_normalise(item.get("normalise")),
            "seed": int(item.get("seed", 0)),
            "sub_intervals": _indices(renders.get("sub_intervals", True), SUB_INTERVALS, "sub_intervals"),
            "sharp": bool(renders.get("sharp", True)),
            "silhouettes": _indices(renders.get("silhouettes", True), INSTANTS, "silhouettes"),
            "windows": windows,
            "coords": _indices(renders.get("coords", False), INSTANTS, "coords"),
            "mesh": bool(renders.get("mesh", False))}


def parse_normalise(normalise) -> tuple[list[float], float] | None:
    """The item's ``normalise`` entry as (centre, diagonal); None when the mesh is normalised already."""
    if normalise is None:
        return None
    try:
        centre = _vector(normalise.get("center"), 3, "normalise.center")
        diagonal = float(normalise.get("diagonal"))
    except (AttributeError, TypeError, ValueError):
        raise ItemError("normalise must be {center: [x, y, z], diagonal: d}") from None
    if not (math.isfinite(diagonal) and diagonal > 0):
        raise ItemError("normalise.diagonal must be a positive number")
    return centre, diagonal


def _vector(value, n: int, name: str) -> list[float]:
    try:
        out = [float(x) for x in value]
    except (TypeError, ValueError):
        raise ItemError(f"{name} must be {n} numbers") from None
    if len(out) != n or not all(math.isfinite(x) for x in out):
        raise ItemError(f"{name} must be {n} finite numbers")
    return out


def _indices(value, n: int, name: str) -> list[int]:
    """``true`` -> all of 0..n-1, ``false`` -> none, a list -> those indices (sorted, unique).

    The parent asks only for what its windows use (centred windows k = 1..10 need sub-intervals
    6..15 and 11 silhouettes), which is most of blurgen's speed over rendering every image.
    """
    if value is True or value is None:
        return list(range(n))
    if value is False:
        return []
    try:
        indices = sorted({int(i) for i in value})
    except (TypeError, ValueError):
        raise ItemError(f"renders.{name} must be true, false or a list of indices") from None
    if indices and (indices[0] < 0 or indices[-1] >= n):
        raise ItemError(f"renders.{name} indices must lie in 0..{n - 1}")
    return indices
