"""The parts of the Blender script that need no Blender: job parsing, the EXR reader, the contract.

They run here with plain Python, the way Blender loads them (the scripts' folder on ``sys.path``).
The EXR reader is checked against files OpenCV writes (an independent OpenEXR implementation).
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from blurgen.render.blender import script_path

SCRIPTS = script_path().parent
sys.path.insert(0, str(SCRIPTS))
import exr_reader  # noqa: E402
import trajectory_job as tj  # noqa: E402

W, H = 7, 5


# ---------------------------------------------------------------- what the scripts import


def test_the_scripts_import_only_bpy_numpy_the_standard_library_and_each_other():
    own = {p.stem for p in SCRIPTS.glob("*.py")}
    allowed = set(sys.stdlib_module_names) | {"bpy", "mathutils", "bpy_extras", "numpy"} | own
    for path in SCRIPTS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for name in names:
                assert name.split(".")[0] in allowed, (path.name, name)


def test_the_contract_and_the_plain_python_modules_need_no_blender():
    """contract (which blurgen imports) is standard library only; job parsing and the EXR
    reader load without bpy (a fresh interpreter where bpy cannot be imported)."""
    code = ("import sys; sys.modules['bpy'] = None; sys.modules['mathutils'] = None; "
            f"sys.path.insert(0, {str(SCRIPTS)!r}); import contract, trajectory_job, exr_reader, item_files; "
            "print('OK')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "OK", out.stderr
    tree = ast.parse((SCRIPTS / "contract.py").read_text("utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    imported |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    assert imported <= {"__future__"}


# ---------------------------------------------------------------- the EXR reader


def opencv_exr(path: Path, rgba: np.ndarray, *, compressed: bool = False, half: bool = False) -> bytes:
    """An EXR written by OpenCV (its OpenEXR writer is off by default: enabled in a subprocess)."""
    np.save(path.with_suffix(".npy"), rgba[..., [2, 1, 0, 3]])  # OpenCV takes BGRA
    code = f"""
import cv2, numpy as np
bgra = np.load({str(path.with_suffix('.npy'))!r})
params = [cv2.IMWRITE_EXR_TYPE, cv2.IMWRITE_EXR_TYPE_{'HALF' if half else 'FLOAT'}]
if not {compressed}:
    params += [cv2.IMWRITE_EXR_COMPRESSION, cv2.IMWRITE_EXR_COMPRESSION_NO]
assert cv2.imwrite({str(path)!r}, bgra, params)
"""
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "OPENCV_IO_ENABLE_OPENEXR": "1"})
    return path.read_bytes()


@pytest.fixture(scope="module")
def rgba() -> np.ndarray:
    # negative and > 1 values too: the film carries object coordinates, and EXR keeps them
    return np.random.default_rng(3).normal(0, 2, size=(H, W, 4)).astype(np.float32)


def test_uncompressed_float_exr_is_read_exactly_rgba_rows_top_to_bottom(tmp_path, rgba):
    data = opencv_exr(tmp_path / "a.exr", rgba)
    got = exr_reader.parse_uncompressed_exr(data, W, H)
    assert got is not None and got.dtype == np.float32 and got.shape == (H, W, 4)
    assert np.array_equal(got, rgba)


def test_other_exrs_are_left_to_blenders_loader(tmp_path, rgba):
    assert exr_reader.parse_uncompressed_exr(opencv_exr(tmp_path / "z.exr", rgba, compressed=True), W, H) is None
    assert exr_reader.parse_uncompressed_exr(opencv_exr(tmp_path / "h.exr", rgba, half=True), W, H) is None
    data = opencv_exr(tmp_path / "a.exr", rgba)
    assert exr_reader.parse_uncompressed_exr(data, W + 1, H) is None  # not the size asked for
    assert exr_reader.parse_uncompressed_exr(data[:40], W, H) is None  # truncated header
    assert exr_reader.parse_uncompressed_exr(data[:-8], W, H) is None  # truncated pixels
    assert exr_reader.parse_uncompressed_exr(b"\x89PNG\r\n\x1a\n" + data[8:], W, H) is None


# ---------------------------------------------------------------- job parsing


def test_job_path_comes_after_the_double_dash_or_first():
    assert tj.job_path_from_argv(["blender", "-b", "--python", "s.py", "--", "job.json"]) == "job.json"
    assert tj.job_path_from_argv(["s.py", "job.json"]) == "job.json"
    for argv in (["s.py"], ["blender", "--", "a", "b"]):
        with pytest.raises(tj.JobError, match="expected one argument"):
            tj.job_path_from_argv(argv)


def test_unreadable_jobs_are_job_errors(tmp_path):
    with pytest.raises(tj.JobError, match="cannot read job"):
        tj.read_job(str(tmp_path / "none.json"))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(tj.JobError, match="cannot read job"):
        tj.read_job(str(tmp_path / "bad.json"))
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(tj.JobError, match="not a JSON object"):
        tj.read_job(str(tmp_path / "list.json"))


def test_settings_take_their_documented_defaults():
    s = tj.parse_settings({"width": "64", "height": 48, "cycles": {"device": "gpu"}})
    assert (s["width"], s["height"]) == (64, 48)
    assert s["camera"] == {"focal_mm": 35.0, "sensor_width_mm": 36.0}
    assert s["cycles"] == {"device": "GPU", "samples": 16, "adaptive_threshold": 0.0, "denoise": False,
                           "max_bounces": 4, "pixel_filter_width": 1.5, "threads": 0}
    assert s["lighting"] == {"ambient": 0.5, "sun_strength": 3.0, "sun_direction": [0.35, -0.55, -0.75]}
    assert s["silhouette_samples"] == 1


@pytest.mark.parametrize("job, message", [
    ({"height": 48}, "bad job settings: KeyError: 'width'"),
    ({"width": 64, "height": "tall"}, "bad job settings: ValueError"),
    ({"width": 64, "height": 48, "cycles": {"device": "TPU"}}, "cycles.device must be CPU or GPU, not 'TPU'"),
    ({"width": 64, "height": 48, "lighting": {"sun_direction": [0, 0, 0]}}, "sun_direction must be 3 numbers"),
])
def test_bad_settings_are_job_errors(job, message):
    with pytest.raises(tj.JobError, match=message.replace("(", r"\(")):
        tj.parse_settings(job)


def test_a_zero_sun_direction_is_fine_without_a_sun():
    assert tj.parse_settings({"width": 8, "height": 8, "lighting": {"sun_strength": 0,
                                                                    "sun_direction": [0, 0, 0]}})


def good_item(**changes) -> dict:
    item = {"item_id": 1, "positions": [[0.0, 0.0, -3.0]] * 24, "angles": [0.1 * t for t in range(24)],
            "axis": [0, 0, 2], "base_quat": [2, 0, 0, 0], "scale": 0.5, "seed": 7,
            "renders": {"sub_intervals": [15, 6, 6], "sharp": False, "silhouettes": True,
                        "windows": [[0, 23], [5, 2]], "coords": [0, 23]}}
    return {**item, **changes}


def test_a_good_item_is_checked_and_normalised_into_the_render_request():
    pose = tj.parse_item(json.loads(json.dumps(good_item())))
    assert pose["sub_intervals"] == [6, 15] and pose["silhouettes"] == list(range(24))
    assert pose["sharp"] is False and pose["windows"] == [(0, 23), (5, 2)] and pose["coords"] == [0, 23]
    assert pose["axis"] == [0.0, 0.0, 2.0] and pose["base_quat"] == [2.0, 0.0, 0.0, 0.0]  # Blender normalises
    assert pose["scale"] == 0.5 and pose["seed"] == 7
    defaults = tj.parse_item(good_item(renders={}))
    assert defaults["sub_intervals"] == list(range(23)) and defaults["sharp"] is True
    assert defaults["windows"] == [] and defaults["coords"] == []
    still = tj.parse_item(good_item(axis=[0, 0, 0], angles=[0.0] * 24))
    assert still["axis"] == [0.0, 0.0, 1.0]  # no rotation: any axis will do


@pytest.mark.parametrize("changes, message", [
    ({"positions": [[0, 0, -3]] * 5}, "positions must hold 24 points"),
    ({"positions": [[0, 0]] * 24}, "each position must be 3 finite numbers"),
    ({"angles": [float("nan")] * 24}, "angles must be 24 finite numbers"),
    ({"angles": "fast"}, "angles must be 24 numbers"),
    ({"axis": [0, 0, 0]}, "axis must not be zero when the object rotates"),
    ({"base_quat": [0, 0, 0, 0]}, "base_quat must not be zero"),
    ({"scale": -1}, "scale must be a positive number"),
    ({"scale": "big"}, "scale must be a positive number"),
    ({"renders": {"windows": [[20, 4]]}}, r"window \[20, 4\] is not inside instants 0..23"),
    ({"renders": {"windows": [[1]]}}, r"window \[1\] is not \[start, count\]"),
    ({"renders": {"silhouettes": [24]}}, r"renders.silhouettes indices must lie in 0..23"),
    ({"renders": {"sub_intervals": [23]}}, r"renders.sub_intervals indices must lie in 0..22"),
    ({"renders": {"coords": ["x"]}}, "renders.coords must be true, false or a list of indices"),
    ({"normalise": {"center": [0, 0, 0], "diagonal": 0}}, "normalise.diagonal must be a positive number"),
    ({"normalise": {"center": [0, 0], "diagonal": 1}}, "normalise.center must be 3 finite numbers"),
    ({"normalise": [1, 2]}, r"normalise must be \{center: \[x, y, z\], diagonal: d\}"),
])
def test_bad_items_are_item_errors_naming_the_value(changes, message):
    with pytest.raises(tj.ItemError, match=message):
        tj.parse_item(good_item(**changes))
