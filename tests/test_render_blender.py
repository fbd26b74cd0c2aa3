"""The Blender side of ``blurgen render``: real Cycles renders (bpy) at tiny sizes.

What is checked against what:
* geometry: Blender's alpha against the pinhole projection of the OBJ's raw vertices, with the
  poses the parent computes (T(p) Rot(axis, angle) R(base_quat) S(scale)), rasterised here;
* premultiplied alpha with an emissive object of known colour (rgb = alpha x colour, exactly);
* the speed idea: the mean of k sub-interval layers against one Cycles render of the k-interval
  window, both against a high-sample reference of that window;
* motion: equal centroid steps for a translation, the axis-angle rotation for a spin (including
  a window that turns by more than pi, which needs several Cycles motion steps);
* byte-identical re-runs, bad items reported without stopping the batch, crash/hang/retry.

Each Blender process costs about a second to start, so the jobs are few and shared by
module-scoped fixtures.
"""

from __future__ import annotations

import math
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import trimesh

from blurgen._blender_scripts.contract import ITEM_DONE
from blurgen.errors import BlurgenError
from blurgen.render import blender as rb
from blurgen.render.blender import ItemFailure, RenderedItem, RenderError, find_blender, render_batch, script_path
from blurgen.render.normalise import Normalisation

W, H = 64, 48
FOCAL_MM, SENSOR_MM = 35.0, 36.0
FX = FOCAL_MM / SENSOR_MM * W
INSTANTS = 24
DARK = {"ambient": 0.0, "sun_strength": 0.0}  # emissive objects only: colours are exact


# ---------------------------------------------------------------- meshes and poses


def write_obj(folder: Path, mesh: trimesh.Trimesh, *, ke=None, kd=(0.8, 0.8, 0.8),
              texture: str | None = None) -> Path:
    """OBJ + MTL in ShapeNet's layout (``models/model_normalized.obj``); ``ke`` makes it emissive."""
    models = folder / "models"
    models.mkdir(parents=True, exist_ok=True)
    lines = ["mtllib model_normalized.mtl"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in mesh.vertices]
    if texture is not None:
        lines += [f"vt {u:.6f} {v:.6f}" for u, v in mesh.vertices[:, :2] % 1.0]
    lines.append("usemtl m")
    fmt = "f {0}/{0} {1}/{1} {2}/{2}" if texture is not None else "f {0} {1} {2}"
    lines += [fmt.format(*(f + 1)) for f in mesh.faces]
    (models / "model_normalized.obj").write_text("\n".join(lines) + "\n")
    mtl = ["newmtl m", "Kd %.6f %.6f %.6f" % tuple(kd if ke is None else (0, 0, 0)), "Ks 0 0 0", "illum 1"]
    if ke is not None:
        mtl.append("Ke %.6f %.6f %.6f" % tuple(ke))
    if texture is not None:
        mtl.append(f"map_Kd {texture}")
    (models / "model_normalized.mtl").write_text("\n".join(mtl) + "\n")
    return models / "model_normalized.obj"


def arm_mesh() -> trimesh.Trimesh:
    """A body with one long arm along +x and a stub along +y: no symmetry to hide a wrong pose."""
    body = trimesh.creation.box(extents=(0.3, 0.3, 0.1))
    arm = trimesh.creation.box(extents=(0.3, 0.08, 0.08))
    arm.apply_translation((0.3, 0.0, 0.0))
    stub = trimesh.creation.box(extents=(0.08, 0.12, 0.08))
    stub.apply_translation((-0.08, 0.21, 0.0))
    return trimesh.util.concatenate([body, arm, stub])


def square_mesh(side: float = 0.3) -> trimesh.Trimesh:
    """A flat square facing the camera (+z normal) centred on the origin."""
    h = side / 2
    return trimesh.Trimesh(vertices=[(-h, -h, 0), (h, -h, 0), (h, h, 0), (-h, h, 0)], faces=[(0, 1, 2), (0, 2, 3)])


def axis_angle_matrix(axis, angle: float) -> np.ndarray:
    k = np.asarray(axis, float) / np.linalg.norm(axis)
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + math.sin(angle) * kx + (1 - math.cos(angle)) * kx @ kx


def quat_matrix(q) -> np.ndarray:
    w, x, y, z = np.asarray(q, float) / np.linalg.norm(q)
    return np.array([[1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y)],
                     [2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x)],
                     [2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y)]])


def world_points(item: dict, vertices: np.ndarray, t: float) -> np.ndarray:
    """The contract's pose at instant t (positions and angles linear in t) applied to vertices."""
    i = min(int(math.floor(t)), INSTANTS - 2)
    f = t - i
    pos = (1 - f) * np.asarray(item["positions"][i]) + f * np.asarray(item["positions"][i + 1])
    angle = (1 - f) * item["angles"][i] + f * item["angles"][i + 1]
    rot = axis_angle_matrix(item["axis"], angle) @ quat_matrix(item["base_quat"])
    return (rot @ (item["scale"] * np.asarray(vertices, float)).T).T + pos


def project(points: np.ndarray) -> np.ndarray:
    """Pinhole projection, continuous pixel coordinates (u right, v down, pixel centres at +0.5)."""
    depth = -points[:, 2]
    return np.stack([W / 2 + FX * points[:, 0] / depth, H / 2 - FX * points[:, 1] / depth], axis=1)


def coverage(mesh: trimesh.Trimesh, item: dict, t: float, ss: int = 8) -> np.ndarray:
    """(H, W) fraction of each pixel covered by the projected mesh at instant t (ss x ss samples)."""
    uv = project(world_points(item, mesh.vertices, t))
    xs = (np.arange(W * ss) + 0.5) / ss
    ys = (np.arange(H * ss) + 0.5) / ss
    hit = np.zeros((H * ss, W * ss), bool)
    for a, b, c in uv[mesh.faces]:
        x0, x1 = np.searchsorted(xs, min(a[0], b[0], c[0])), np.searchsorted(xs, max(a[0], b[0], c[0]))
        y0, y1 = np.searchsorted(ys, min(a[1], b[1], c[1])), np.searchsorted(ys, max(a[1], b[1], c[1]))
        if x1 <= x0 or y1 <= y0:
            continue
        px, py = np.meshgrid(xs[x0:x1], ys[y0:y1])

        def edge(p, q):
            return (q[0] - p[0]) * (py - p[1]) - (q[1] - p[1]) * (px - p[0])

        e0, e1, e2 = edge(a, b), edge(b, c), edge(c, a)
        inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
        hit[y0:y1, x0:x1] |= inside
    return hit.reshape(H, ss, W, ss).mean(axis=(1, 3))


def centroid(alpha: np.ndarray) -> np.ndarray:
    """Alpha-weighted (u, v) centre in continuous pixel coordinates."""
    rows, cols = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]]
    total = alpha.sum()
    return np.array([((cols + 0.5) * alpha).sum() / total, ((rows + 0.5) * alpha).sum() / total])


def orientation(alpha: np.ndarray) -> float:
    """Angle (radians, image x right / y up, modulo pi) of the principal axis of alpha's moments."""
    rows, cols = np.mgrid[0:alpha.shape[0], 0:alpha.shape[1]]
    cu, cv = centroid(alpha)
    du, dv = cols + 0.5 - cu, -(rows + 0.5 - cv)  # y up, like the world
    m = alpha / alpha.sum()
    sxx, syy, sxy = (m * du * du).sum(), (m * dv * dv).sum(), (m * du * dv).sum()
    return 0.5 * math.atan2(2 * sxy, sxx - syy)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR in dB over all RGBA values (premultiplied linear, peak 1)."""
    return float(10 * np.log10(1.0 / np.mean((a.astype(np.float64) - b) ** 2)))


def item(item_id: int, mesh: Path, out_dir: Path, *, positions, angles=None, axis=(0, 0, 1),
         base_quat=(1, 0, 0, 0), scale=1.0, seed=None, **renders) -> dict:
    return {"item_id": item_id, "mesh": str(mesh), "out": str(out_dir / f"item-{item_id:08d}.npz"),
            "scale": scale, "positions": [list(map(float, p)) for p in positions],
            "axis": list(axis), "angles": list(map(float, angles if angles is not None else [0.0] * INSTANTS)),
            "base_quat": list(base_quat), "seed": item_id * 1000 if seed is None else seed,
            "renders": {"sub_intervals": True, "sharp": True, "silhouettes": True, **renders}}


def line(start, end) -> list[list[float]]:
    return [list(np.asarray(start, float) + (np.asarray(end, float) - start) * t / (INSTANTS - 1))
            for t in range(INSTANTS)]


def job(items: list[dict], *, samples: int = 16, lighting: dict | None = None, **extra) -> dict:
    return {"width": W, "height": H, "camera": {"focal_mm": FOCAL_MM, "sensor_width_mm": SENSOR_MM},
            "cycles": {"device": "CPU", "samples": samples, "adaptive_threshold": 0.0, "denoise": False,
                       "max_bounces": 4, "threads": 0, "pixel_filter_width": 1.5},
            "lighting": lighting if lighting is not None else {}, "silhouette_samples": 4,
            "items": items, **extra}


def run_ok(the_job: dict, workdir: Path, **kwargs) -> dict[int, dict[str, np.ndarray]]:
    results = render_batch(the_job, workdir, **kwargs)
    assert all(isinstance(r, RenderedItem) for r in results.values()), results
    return {i: r.load() for i, r in results.items()}


# ---------------------------------------------------------------- shared renders


ARM_COLOUR = (0.9, 0.3, 0.1)
SQUARE_COLOUR = (1.0, 0.5, 0.25)


@pytest.fixture(scope="module")
def meshes(tmp_path_factory) -> dict[str, tuple[Path, trimesh.Trimesh]]:
    root = tmp_path_factory.mktemp("meshes")
    arm, square = arm_mesh(), square_mesh()
    return {"arm": (write_obj(root / "arm", arm, ke=ARM_COLOUR), arm),
            "square": (write_obj(root / "square", square, ke=SQUARE_COLOUR), square)}


def geometry_items(meshes: dict, out: Path) -> list[dict]:
    arm_path, _ = meshes["arm"]
    square_path, _ = meshes["square"]
    return [
        # 1: the arm flies across, turning about a tilted axis, with a base rotation of 90 degrees
        # about z (the arm, +x in the file, starts pointing up) and a scale. Two coordinate
        # layers (for flow; tests/test_render_flow.py) join the byte-identical re-run check.
        item(1, arm_path, out, positions=line((-0.35, -0.1, -3.0), (0.4, 0.15, -2.6)),
             angles=np.linspace(0.0, 1.2, INSTANTS), axis=(0.3, 0.4, 1.0),
             base_quat=(math.cos(math.pi / 4), 0, 0, math.sin(math.pi / 4)), scale=0.9, coords=[0, 23]),
        # 2: the square slides parallel to the image plane (projection affine in t: the centroid
        # moves by equal steps). Odd edge positions leave partially covered pixels.
        item(2, square_path, out, positions=line((-0.8, -0.13, -3.0), (0.75, 0.21, -3.0)), silhouettes=False),
        # 3: the arm spins about the view axis through its centre, 0.6 rad per sub-interval; its
        # 12-interval window turns by 7.2 rad (> 2 pi: needs more than one Cycles motion step).
        item(3, arm_path, out, positions=[(0.02, -0.03, -3.0)] * INSTANTS,
             angles=0.6 * np.arange(INSTANTS), axis=(0, 0, 1), sharp=False, silhouettes=False,
             windows=[[5, 12]]),
    ]


@pytest.fixture(scope="module")
def geometry_job(meshes, tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("geometry-out")
    return job(geometry_items(meshes, out), samples=32, lighting=DARK)


@pytest.fixture(scope="module")
def geometry(geometry_job, tmp_path_factory) -> dict[int, dict[str, np.ndarray]]:
    return run_ok(geometry_job, tmp_path_factory.mktemp("geometry-work"))


# ---------------------------------------------------------------- 1. geometry


@pytest.mark.slow
def test_sharp_render_lands_where_the_pinhole_projects_the_obj_vertices(meshes, geometry_job, geometry):
    _, arm = meshes["arm"]
    spec = geometry_job["items"][0]
    alpha = geometry[1]["sharp"][..., 3]
    expected = coverage(arm, spec, 11.5)  # the sharp render is at the trajectory centre
    # The pixel filter (Blackman-Harris, 1.5 px) is symmetric and normalised: it keeps the
    # centroid and the total coverage, so these compare exactly up to render noise.
    assert np.abs(centroid(alpha) - centroid(expected)).max() < 0.1
    assert alpha.sum() == pytest.approx(expected.sum(), rel=0.02)
    iou = ((alpha >= 0.5) & (expected >= 0.5)).sum() / ((alpha >= 0.5) | (expected >= 0.5)).sum()
    assert iou > 0.9


@pytest.mark.slow
def test_base_rotation_turns_the_file_axes_as_the_parent_expects(meshes, geometry_job, geometry):
    # base_quat is 90 degrees about z: the arm (+x in the OBJ file) points up at instant 0; the
    # stub (+y in the file) points left. A mirrored or Y-up-converted import would fail this.
    spec = geometry_job["items"][0]
    sil = geometry[1]["silhouettes"][0].astype(float)
    origin = project(world_points(spec, np.zeros((1, 3)), 0.0))[0]
    arm_tip = project(world_points(spec, np.array([[0.42, 0.0, 0.0]]), 0.0))[0]
    assert arm_tip[1] < origin[1] - 5  # 7.8 px up in the image
    cu, cv = centroid(sil)
    assert cv < origin[1] - 1 and cu < origin[0]  # the arm pulls the centroid up, the stub left


@pytest.mark.slow
def test_silhouettes_follow_the_pose_at_every_instant(meshes, geometry_job, geometry):
    _, arm = meshes["arm"]
    spec = geometry_job["items"][0]
    sil = geometry[1]["silhouettes"]
    assert sil.shape == (INSTANTS, H, W) and sil.dtype == bool
    for t in (0, 7, 16, 23):
        expected = coverage(arm, spec, t) >= 0.5
        # 4 spp silhouettes: only pixels on the outline can flip.
        assert (sil[t] & expected).sum() / (sil[t] | expected).sum() > 0.85
        assert np.abs(centroid(sil[t].astype(float)) - centroid(expected.astype(float))).max() < 0.4


# ---------------------------------------------------------------- 2. premultiplied alpha


@pytest.mark.slow
def test_rgb_is_premultiplied_by_alpha(geometry):
    # An emissive square (no lights): every covered sample has radiance exactly SQUARE_COLOUR,
    # every uncovered one is transparent black, so a premultiplied pixel is alpha x colour.
    layers = geometry[2]["layers"]
    alpha, rgb = layers[..., 3:], layers[..., :3]
    partial = (alpha[..., 0] > 0.05) & (alpha[..., 0] < 0.95)
    assert partial.sum() > 100  # motion blur and the odd edge positions make plenty
    np.testing.assert_allclose(rgb, alpha * np.array(SQUARE_COLOUR), atol=1e-5)
    # ... and not straight alpha, which would keep the full colour in half-covered pixels.
    assert (rgb[partial][:, 0] < 0.95 * SQUARE_COLOUR[0]).all()
    assert (layers[alpha[..., 0] == 0] == 0).all()  # transparent film: nothing behind the object


# ---------------------------------------------------------------- 4. motion


@pytest.mark.slow
def test_translation_moves_the_layer_centroids_by_equal_steps(geometry_job, geometry):
    spec = geometry_job["items"][1]
    layers = geometry[2]["layers"]
    assert layers.shape == (INSTANTS - 1, H, W, 4) and layers.dtype == np.float32
    centres = np.array([centroid(layer[..., 3]) for layer in layers])
    # A translation parallel to the image plane projects affinely: the time-averaged coverage
    # of sub-interval j is centred on the projected centre at j + 0.5.
    projected = np.array([project(world_points(spec, np.zeros((1, 3)), j + 0.5))[0] for j in range(23)])
    # Measured: at most 0.05 px off (32 spp edge noise), steps within 0.07 px of equal. Bezier
    # keys (ease in/out at the first and last instants) put sub-intervals 0 and 22 0.15 px off
    # and their steps 0.18 px; these bounds catch that.
    assert np.abs(centres - projected).max() < 0.1
    steps = np.diff(centres, axis=0)
    assert np.abs(steps - (projected[1] - projected[0])).max() < 0.14
    assert np.ptp(layers[..., 3].sum(axis=(1, 2))) < 0.05 * layers[0, ..., 3].sum()


def _swept_coverage(mesh, spec, t0: float, t1: float, n: int, angle_at=None) -> np.ndarray:
    """Coverage averaged over n instants spread evenly in [t0, t1] (the exact motion blur)."""
    frames = []
    for k in range(n):
        t = t0 + (t1 - t0) * (k + 0.5) / n
        if angle_at is None:
            frames.append(coverage(mesh, spec, t, ss=4))
        else:
            frames.append(coverage(mesh, {**spec, "angles": [angle_at(t)] * INSTANTS}, 0.0, ss=4))
    return np.mean(frames, axis=0)


@pytest.mark.slow
def test_rotation_follows_the_axis_angle_within_each_sub_interval(meshes, geometry_job, geometry):
    _, arm = meshes["arm"]
    spec = geometry_job["items"][2]  # 0.6 rad per sub-interval about the view axis
    layers = geometry[3]["layers"]
    for j in range(INSTANTS - 1):
        expected = _swept_coverage(arm, spec, j, j + 1, 16)
        alpha = layers[j][..., 3]
        # Interpolating rotation matrices linearly (instead of slerp) would shrink the arm
        # mid-interval by cos(0.3) and lose ~9 % of the coverage. The fan's principal axis is
        # the mid-interval angle: measured within 0.035 rad; Bezier keys (ease in/out) put the
        # first and last sub-intervals 0.053 and 0.088 rad off.
        assert alpha.sum() == pytest.approx(expected.sum(), rel=0.03)
        assert abs(orientation(alpha) - orientation(expected)) < 0.05
        assert np.abs(alpha - expected).mean() < 0.002  # measured <= 0.0017


@pytest.mark.slow
def test_a_window_turning_more_than_pi_keeps_its_rotation_exact(meshes, geometry_job, geometry):
    _, arm = meshes["arm"]
    spec = geometry_job["items"][2]
    start, count = spec["renders"]["windows"][0]  # 12 sub-intervals = 7.2 rad
    window = geometry[3]["windows"][0][..., 3]
    assert geometry[3]["window_spans"].tolist() == [[start, count]]
    right = _swept_coverage(arm, spec, start, start + count, 192)
    a0, a1 = spec["angles"][start], spec["angles"][start + count]

    def short_way(t: float) -> float:
        # What Cycles would do with one motion step of 3.6 rad each side of the middle: slerp the
        # short way round (-2.68 rad).
        f = (t - start) / count
        x, y, g = (a0, (a0 + a1) / 2, 2 * f) if f < 0.5 else ((a0 + a1) / 2, a1, 2 * f - 1)
        return x + g * ((y - x + math.pi) % (2 * math.pi) - math.pi)

    wrong = _swept_coverage(arm, spec, start, start + count, 192, angle_at=short_way)
    # Measured: MSE 1.1e-4 to the right sweep and 1.8e-4 to the wrong one with enough motion
    # steps, the other way round (2.1e-4 / 1.1e-4) with a single step; noise is the 1e-4 floor.
    assert np.mean((window - right) ** 2) < 0.75 * np.mean((window - wrong) ** 2)
    assert window.sum() == pytest.approx(right.sum(), rel=0.03)


# ---------------------------------------------------------------- 3. the speed idea


K, K_START = 8, (INSTANTS - 1 - 8) // 2  # a centred 8-interval window, [7, 15]
LOW_SPP, REF_SPP = 16, 1024


@pytest.fixture(scope="module")
def textured_obj(tmp_path_factory) -> Path:
    from blurgen.assets import DemoAssetsConfig, demo_assets

    config = DemoAssetsConfig(categories=3, objects_per_category=1, texture_size=64, backgrounds=0, preview=False)
    manifest = demo_assets(cache_dir=tmp_path_factory.mktemp("demo") / "set", config=config).objects_manifest()
    car = next(i for i in manifest.ids() if i.startswith("02958343"))  # a chunky, textured car
    return Path(manifest.path_of(car))


def _car_item(item_id: int, mesh: Path, out: Path, seed: int, **renders) -> dict:
    return item(item_id, mesh, out, positions=line((-0.25, -0.05, -1.6), (0.3, 0.08, -1.5)),
                angles=np.linspace(0.0, 1.5, INSTANTS), axis=(0.2, 1.0, 0.1), base_quat=(0.95, 0.2, 0.2, 0.0),
                seed=seed, sharp=False, silhouettes=False, **renders)


@pytest.mark.slow
def test_mean_of_sub_interval_layers_equals_a_render_of_the_window(textured_obj, tmp_path):
    out = tmp_path / "out"
    low = job([_car_item(1, textured_obj, out, 11, windows=[[K_START, K]]),
               _car_item(2, textured_obj, out, 22)], samples=LOW_SPP)  # default (lit) rig
    ref = job([_car_item(3, textured_obj, out, 33, sub_intervals=False, windows=[[K_START, K]])], samples=REF_SPP)
    a, b = run_ok(low, tmp_path / "w1"), run_ok(ref, tmp_path / "w2")[3]["windows"][0]
    mean_a = a[1]["layers"][K_START:K_START + K].mean(axis=0)
    mean_b = a[2]["layers"][K_START:K_START + K].mean(axis=0)
    direct = a[1]["windows"][0]  # the published generators' way, same spp as one layer

    def mse(x, y):
        return float(np.mean((x.astype(np.float64) - y) ** 2))

    # Noise levels, measured from the renders themselves: the mean's variance from two
    # independent means (other seeds): sigma2_mean = mse(A, B) / 2; the reference is a direct
    # render of the window with REF_SPP / LOW_SPP times the samples of `direct`, so
    # sigma2_ref ~= mse(direct, ref) * LOW_SPP / REF_SPP. If the mean of the layers and the
    # window render estimate the same image (no bias: same interval, same time weighting),
    # mse(mean, ref) ~= sigma2_mean + sigma2_ref; a 50 % margin covers the scatter of these
    # estimates (measured here: 1.78e-5 <= 1.5 * (1.26e-5 + 0.30e-5)). One sub-interval of
    # shift, or Bezier ease at the ends, adds far more than that.
    sigma2_mean = mse(mean_a, mean_b) / 2
    sigma2_ref = mse(direct, b) * LOW_SPP / REF_SPP
    assert mse(mean_a, b) <= 1.5 * (sigma2_mean + sigma2_ref)
    # The speed idea: the mean of K layers has K times the samples of one direct render of
    # the window at the same spp, so ~10*log10(8) = 9 dB less noise (measured 47.5 vs 37.2 dB).
    assert psnr(mean_a, b) >= psnr(direct, b) + 6.0
    assert psnr(mean_a, b) >= 40.0  # DESIGN.md: 40.7 dB for 10 x 4 spp at 320x240
    # Coverage, which blur severity is computed from: per pixel and in total.
    assert np.abs(mean_a[..., 3] - b[..., 3]).mean() < 0.004  # measured 0.0020 (direct: 0.0065)
    assert mean_a[..., 3].sum() == pytest.approx(b[..., 3].sum(), rel=0.01)


# ---------------------------------------------------------------- 5. reproducibility


@pytest.mark.slow
def test_the_same_job_twice_gives_byte_identical_arrays(geometry_job, geometry, tmp_path):
    again = {**geometry_job, "items": [{**it, "out": str(tmp_path / Path(it["out"]).name)}
                                       for it in geometry_job["items"]]}
    second = run_ok(again, tmp_path / "work")
    assert second.keys() == geometry.keys()
    for item_id, arrays in geometry.items():
        assert arrays.keys() == second[item_id].keys()
        for name, value in arrays.items():
            if name == "cycles_seconds":
                continue  # a timing, not an image
            assert value.dtype == second[item_id][name].dtype
            assert value.tobytes() == second[item_id][name].tobytes(), (item_id, name)


# ---------------------------------------------------------------- 6. bad items


def fake_blender(folder: Path) -> Path:
    """A stand-in for a Blender binary: ``blender -b --factory-startup --python S -- JOB``
    runs ``python S -- JOB``, so the script's ``--`` argument parsing is exercised."""
    exe = folder / "blender"
    exe.write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "-b --factory-startup --python" ] || exit 9\n'
                   f'exec "{sys.executable}" "$4" "$5" "$6"\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


@pytest.mark.slow
def test_bad_items_are_reported_and_the_others_rendered(meshes, tmp_path):
    arm_path, _ = meshes["arm"]
    bad = tmp_path / "bad"
    empty = bad / "empty.obj"
    empty.parent.mkdir(parents=True)
    empty.write_text("# nothing here\n")
    garbage = bad / "garbage.obj"
    garbage.write_bytes(b"\x89PNG not an obj at all\nv 1 2\nf 1 2 3\n")
    cube = trimesh.creation.box(extents=(0.3, 0.3, 0.3))
    no_texture = write_obj(bad / "no_texture", cube, texture="../images/texture0.png")  # never written
    broken_texture = write_obj(bad / "broken_texture", cube, texture="../images/texture0.png")
    (bad / "broken_texture" / "images").mkdir()
    (bad / "broken_texture" / "images" / "texture0.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    no_mtl = write_obj(bad / "no_mtl", cube)
    (no_mtl.parent / "model_normalized.mtl").unlink()
    out = tmp_path / "out"
    still = dict(positions=[(0.0, 0.0, -3.0)] * INSTANTS, sub_intervals=False, silhouettes=False)
    items = [item(1, arm_path, out, **still), item(2, bad / "missing.obj", out, **still),
             item(3, empty, out, **still), item(4, garbage, out, **still), item(5, no_texture, out, **still),
             item(6, broken_texture, out, **still), item(7, no_mtl, out, **still),
             item(8, no_texture, out, **still),  # the same bad mesh again: the remembered reason
             {**item(9, arm_path, out, **still), "positions": [[0, 0, -3]] * 5},
             item(10, arm_path, out, **still)]  # the first mesh again, imported once
    seen: list[int] = []
    results = render_batch(job(items, samples=1), tmp_path / "work", blender=str(fake_blender(tmp_path)),
                           on_item=seen.append)
    assert seen == list(range(1, 11))
    assert {i for i, r in results.items() if isinstance(r, RenderedItem)} == {1, 10}
    reasons = {i: r.reason for i, r in results.items() if isinstance(r, ItemFailure)}
    assert reasons[2].startswith("mesh file not found")
    assert reasons[3] == reasons[4] == "mesh has no faces"
    assert reasons[5].startswith("texture failed to load") and "texture0.png" in reasons[5]
    assert reasons[6].startswith("texture failed to load")
    assert reasons[7].startswith("material library missing")
    assert reasons[8] == reasons[5]
    assert reasons[9].startswith("positions must hold 24 points")
    for i in reasons:
        assert not (out / f"item-{i:08d}.npz").exists()
        assert (out / f"item-{i:08d}.npz.error.json").is_file()
    assert set(results[1].load()) == {"sharp", "cycles_seconds"}  # only what was asked for
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


# ---------------------------------------------------------------- 7. crash, hang, retry


def _cheap_items(mesh: Path, out: Path, n: int) -> list[dict]:
    return [item(i, mesh, out, positions=[(0.0, 0.0, -3.0)] * INSTANTS, sub_intervals=False, silhouettes=False)
            for i in range(1, n + 1)]


@pytest.mark.slow
def test_a_crash_is_retried_on_the_unfinished_items(meshes, tmp_path):
    seen: list[int] = []
    the_job = job(_cheap_items(meshes["arm"][0], tmp_path / "out", 2), samples=1, _test_crash_after=1)
    results = render_batch(the_job, tmp_path / "work", on_item=seen.append)
    assert all(isinstance(r, RenderedItem) for r in results.values()) and set(results) == {1, 2}
    assert seen == [1, 2]
    retry_job = (tmp_path / "work" / "job-2.json").read_text()
    assert '"item_id": 2' in retry_job and '"item_id": 1' not in retry_job


@pytest.mark.slow
def test_a_second_crash_raises_naming_the_items(meshes, tmp_path):
    the_job = job(_cheap_items(meshes["arm"][0], tmp_path / "out", 3), samples=1, _test_crash_after=1)
    with pytest.raises(RenderError) as info:
        render_batch(the_job, tmp_path / "work")
    message = str(info.value)
    assert "\n" not in message
    assert "SIGKILL" in message and "items 3 " in message and str(tmp_path / "work" / "blender-2.log") in message


def stand_in_blender(folder: Path, script: str) -> Path:
    """A "Blender binary" that runs ``script`` (sh, with the job path in $JOB) instead of Blender:
    the runner's side of the protocol, without Blender's start-up time."""
    exe = folder / "stand-in-blender"
    exe.write_text(f'#!/bin/sh\nJOB="$6"\n{script}\n')
    exe.chmod(exe.stat().st_mode | stat.S_IXUSR)
    return exe


def test_a_hang_is_killed_after_the_timeout_and_reported(tmp_path):
    """Item 1 is done, then the process falls silent: killed (its whole group), item 2 named."""
    out = tmp_path / "out"
    out.mkdir()
    items = [{"item_id": i, "mesh": "m.obj", "out": str(out / f"item-{i}.npz")} for i in (1, 2)]
    exe = stand_in_blender(tmp_path, f'echo $$ > "{tmp_path}/pid"\n: > "{out}/item-1.npz"\n'
                                     f'echo "{ITEM_DONE} 1"\nexec sleep 3600')
    seen: list[int] = []
    with pytest.raises(RenderError, match=r"hung \(no progress for 2 s, killed\) on items 2 \(1 attempt\)"):
        render_batch({"items": items}, tmp_path / "work", blender=str(exe), timeout_s=2, retries=0,
                     on_item=seen.append)
    assert seen == [1] and (out / "item-1.npz").is_file()
    with pytest.raises(ProcessLookupError):  # killed and reaped, not left sleeping
        os.kill(int((tmp_path / "pid").read_text()), 0)


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("nvidia-smi") is not None, reason="this machine may have a GPU")
def test_gpu_rendering_without_a_gpu_fails_at_once_saying_so(meshes, tmp_path):
    the_job = job(_cheap_items(meshes["arm"][0], tmp_path / "out", 1), samples=1)
    the_job["cycles"]["device"] = "GPU"
    with pytest.raises(RenderError, match="cannot run the job: cycles.device is GPU but Blender finds no usable "
                                          "GPU"):
        render_batch(the_job, tmp_path / "work")
    assert not (tmp_path / "work" / "blender-2.log").exists()  # no retry: it cannot help
    assert not (tmp_path / "out" / "item-00000001.npz").exists()  # no silent fall-back to the CPU


@pytest.mark.slow
def test_a_job_blender_cannot_run_fails_at_once_without_retry(meshes, tmp_path):
    the_job = job(_cheap_items(meshes["arm"][0], tmp_path / "out", 1), samples=1)
    the_job["cycles"]["device"] = "TPU"
    with pytest.raises(RenderError, match="cannot run the job: cycles.device must be CPU or GPU"):
        render_batch(the_job, tmp_path / "work")
    assert not (tmp_path / "work" / "blender-2.log").exists()


# ---------------------------------------------------------------- runner without Blender


def test_find_blender_with_a_binary_uses_blenders_command_line(tmp_path):
    exe = fake_blender(tmp_path)
    cmd = find_blender(str(exe))
    assert cmd[:5] == [str(exe), "-b", "--factory-startup", "--python", str(rb.script_path())] and cmd[5] == "--"
    assert rb.script_path().is_file()


def test_find_blender_without_a_binary_uses_this_python_when_it_has_bpy(monkeypatch):
    monkeypatch.setattr(rb.importlib.util, "find_spec", lambda name: object() if name == "bpy" else None)
    assert find_blender(None) == [sys.executable, str(rb.script_path())]


def test_find_blender_says_how_to_get_one(monkeypatch, tmp_path):
    monkeypatch.setattr(rb.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BlurgenError, match=r"pip install bpy==5\.0\.1.*--blender PATH"):
        find_blender(None)
    with pytest.raises(BlurgenError, match="not found or not executable"):
        find_blender(str(tmp_path / "no-such-blender"))


def test_an_empty_batch_starts_no_blender(tmp_path):
    assert render_batch(job([]), tmp_path) == {}


# ---------------------------------------------------------------- 8. the EXR reader


@pytest.mark.slow
def test_numpy_exr_reader_matches_blenders_loader(tmp_path):
    """The fast path (numpy on the uncompressed EXR) must give Blender's own numbers, and be taken."""
    code = f"""
import sys, numpy as np, bpy
sys.path.insert(0, {str(script_path().parent)!r})
import cycles_renderer, exr_reader
scene = bpy.context.scene
scene.render.engine = 'CYCLES'; scene.cycles.samples = 2; scene.cycles.use_denoising = False
scene.render.resolution_x, scene.render.resolution_y, scene.render.resolution_percentage = 40, 30, 100
scene.render.film_transparent = True
s = scene.render.image_settings; s.file_format = 'OPEN_EXR'; s.exr_codec = 'NONE'; s.color_depth = '32'
bpy.ops.mesh.primitive_monkey_add(location=(0.4, 0.2, 0))
bpy.ops.render.render()
path = {str(tmp_path / 'r.exr')!r}
bpy.data.images['Render Result'].save_render(path, scene=scene)
fast = exr_reader.parse_uncompressed_exr(open(path, 'rb').read(), 40, 30)
slow = cycles_renderer._read_exr_with_blender(path, 40, 30)
assert fast is not None, 'fast path not taken'
assert fast.dtype == np.float32 and fast.shape == (30, 40, 4)
assert np.array_equal(fast, slow), np.abs(fast - slow).max()
assert 0 < fast[..., 3].sum() < 40 * 30
print('EXR-OK')
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert "EXR-OK" in out.stdout, out.stderr[-2000:]


# ---------------------------------------------------------------- 9. the request: what a batch renders


def render_config(*sets: str):
    from blurgen.config import resolve_config
    from blurgen.render.config import RenderConfig

    return resolve_config(RenderConfig, "render", preset="demo", overrides=list(sets))


def test_centred_windows_need_sub_intervals_6_to_15_and_their_11_endpoints():
    # by hand: window k starts at (23 - k) // 2, so k = 10 spans instants 6..16 and k = 1 11..12;
    # the endpoints are 11,12 | 10,12 | 10,13 | 9,13 | 9,14 | 8,14 | 8,15 | 7,15 | 7,16 | 6,16
    assert rb.needed_renders(render_config()) == (list(range(6, 16)), list(range(6, 17)))
    assert rb.needed_renders(render_config("images.max_window=1")) == ([11], [11, 12])
    assert rb.needed_renders(render_config("images.max_window=2")) == ([10, 11], [10, 11, 12])


def test_all_windows_need_every_sub_interval_and_instant():
    assert rb.needed_renders(render_config("images.windows=all", "images.max_window=3")) == (
        list(range(23)), list(range(24)))


def test_the_blender_job_asks_for_the_needed_renders_and_coordinates_only_with_flow(tmp_path):
    from types import SimpleNamespace

    plan = SimpleNamespace(objects=SimpleNamespace(path_of=lambda object_id: Path(f"/m/{object_id}.obj")))
    pose = {"positions": [[0, 0, -3]] * INSTANTS, "angles": [0.0] * INSTANTS, "axis": [0, 0, 1],
            "base_quat": [1, 0, 0, 0], "scale": 1.0}
    # o3 is normalised already (within the tolerance: nothing asked), o4 is 2 m across about (1, 2, 3)
    boxes = {3: Normalisation((0.0, 4e-6, 0.0), 1.000005), 4: Normalisation((1.0, 2.0, 3.0), 2.0)}
    prepared = [SimpleNamespace(item=SimpleNamespace(item_id=i, object_id=f"o{i}"), cycles_seed=100 + i,
                                trajectory=SimpleNamespace(to_job=lambda: pose), normalisation=boxes[i])
                for i in (3, 4)]
    config = render_config("images.max_window=2", "camera.width=64", "camera.height=48", "cycles.samples=5")
    the_job = rb.blender_job(config, plan, prepared, tmp_path, threads=2)
    assert (the_job["width"], the_job["height"], the_job["cycles"]["samples"]) == (64, 48, 5)
    assert the_job["cycles"]["threads"] == 2 and the_job["cycles"]["device"] == "CPU"
    assert [i["item_id"] for i in the_job["items"]] == [3, 4] and the_job["items"][1]["seed"] == 104
    first = the_job["items"][0]
    assert first["mesh"] == "/m/o3.obj" and first["out"] == str(tmp_path / "item-0000000000003.npz")
    # the mesh's triangles for the labels' exact coverage (labels.coverage: exact, the default)
    assert first["renders"] == {"sub_intervals": [10, 11], "sharp": True, "silhouettes": [10, 11, 12],
                                "mesh": True}
    from_colour = rb.blender_job(render_config("images.max_window=2", "labels.coverage=render"), plan,
                                 prepared, tmp_path, threads=0)
    assert "mesh" not in from_colour["items"][0]["renders"]
    assert first["positions"] == pose["positions"]
    with_flow = rb.blender_job(render_config("images.max_window=2", "images.flow=true"), plan, prepared,
                               tmp_path, threads=0)
    assert with_flow["items"][0]["renders"]["coords"] == [10, 11, 12]
    sys.path.insert(0, str(script_path().parent))
    import trajectory_job  # the script accepts what blurgen asks for

    assert trajectory_job.parse_settings(with_flow)["cycles"]["samples"] == with_flow["cycles"]["samples"]
    assert trajectory_job.parse_item(with_flow["items"][0])["coords"] == [10, 11, 12]
    assert "normalise" not in first and the_job["items"][1]["normalise"] == {"center": [1.0, 2.0, 3.0], "diagonal": 2.0}
    assert trajectory_job.parse_item(first)["normalise"] is None
    assert trajectory_job.parse_item(first)["mesh"] is True and trajectory_job.parse_item(with_flow["items"][0])["mesh"]
    assert trajectory_job.parse_item(the_job["items"][1])["normalise"] == ([1.0, 2.0, 3.0], 2.0)
