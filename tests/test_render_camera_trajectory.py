"""Camera conventions (Blender vs OpenCV) and random 6D trajectories."""

from __future__ import annotations

import json

import numpy as np
import pytest

from blurgen.errors import BlurgenError
from blurgen.render.camera import BLENDER_TO_OPENCV, Camera
from blurgen.render.trajectory import Trajectory, axis_angle_to_matrix, mean_speed_px, sample_trajectory

CAM = Camera(width=320, height=240, focal_mm=35.0, sensor_width_mm=36.0)
SETTINGS = dict(depth=(2.0, 3.5), object_size=(0.9, 1.3), translation=(0.1, 1.6), rotation_deg=(0.0, 120.0))


def sample(seed: int, **overrides) -> Trajectory:
    return sample_trajectory(np.random.default_rng(seed), CAM, **{**SETTINGS, **overrides})


def rotation_angle(r: np.ndarray) -> float:
    return float(np.arccos(np.clip((np.trace(r) - 1) / 2, -1, 1)))


# --- camera -----------------------------------------------------------------------------------

def test_intrinsics_follow_the_documented_conventions():
    assert CAM.fx == CAM.fy == pytest.approx(35 / 36 * 320)
    assert (CAM.cx, CAM.cy) == (160.0, 120.0)
    assert np.array_equal(CAM.intrinsics(), [[CAM.fx, 0, 160], [0, CAM.fx, 120], [0, 0, 1]])


def test_blender_projection():
    # On the optical axis -> principal point; up (+y) -> smaller v; right (+x) -> larger u.
    uv = CAM.project(np.array([[0, 0, -2.0], [0.5, 0, -2.0], [0, 0.5, -2.0]]))
    assert np.allclose(uv, [[160, 120], [160 + CAM.fx * 0.25, 120], [160, 120 - CAM.fx * 0.25]])
    assert CAM.in_front(np.array([[0, 0, -1.0], [0, 0, 1.0]])).tolist() == [True, False]


def test_unproject_inverts_project():
    uv = np.array([[0.0, 0.0], [319.5, 12.25], [160, 120]])
    points = CAM.unproject(uv, np.array([1.0, 2.5, 7.0]))
    assert np.allclose(CAM.project(points), uv) and np.allclose(-points[:, 2], [1.0, 2.5, 7.0])


def test_frustum_contains_with_margins():
    points = CAM.unproject(np.array([[10.0, 120], [40, 120], [160, 20], [160, 30], [160, 120]]), 3.0)
    assert CAM.frustum_contains(points).tolist() == [True] * 5
    assert CAM.frustum_contains(points, (32.0, 24.0)).tolist() == [False, True, False, True, True]
    assert not CAM.frustum_contains(np.array([[0, 0, 3.0]]))[0]  # behind the camera


def test_bad_camera_is_refused():
    with pytest.raises(BlurgenError):
        Camera(0, 240, 35, 36)


# --- trajectories -----------------------------------------------------------------------------

def test_same_seed_same_trajectory_different_seed_different():
    a, b, c = sample(3), sample(3), sample(4)
    for field in ("positions", "axis", "angles", "base_quat"):
        assert np.array_equal(getattr(a, field), getattr(b, field))
    assert a.scale == b.scale
    assert not np.allclose(a.positions, c.positions)


def test_every_instant_stays_in_the_shrunk_frustum_and_depth_range():
    margin = 0.1
    for seed in range(50):
        traj = sample(seed, margin=margin)
        uv = CAM.project(traj.positions)
        assert (uv[:, 0] >= margin * 320 - 1e-9).all() and (uv[:, 0] <= 320 * (1 - margin) + 1e-9).all()
        assert (uv[:, 1] >= margin * 240 - 1e-9).all() and (uv[:, 1] <= 240 * (1 - margin) + 1e-9).all()
        depth = -traj.positions[:, 2]
        assert (depth >= 2.0 - 1e-9).all() and (depth <= 3.5 + 1e-9).all()
        length = np.linalg.norm(traj.positions[-1] - traj.positions[0])
        assert 0.1 - 1e-9 <= length <= 1.6 + 1e-9
        assert 0.0 <= np.degrees(traj.angles[-1]) <= 120.0 and 0.9 <= traj.scale <= 1.3


def test_objects_move_in_depth_too():
    dz = [abs(sample(s).positions[-1, 2] - sample(s).positions[0, 2]) for s in range(20)]
    assert max(dz) > 0.1


def test_positions_are_linear_in_t():
    traj = sample(5)
    assert np.allclose(traj.position(11.5), (traj.positions[11] + traj.positions[12]) / 2)
    assert np.allclose(np.diff(traj.positions, 2, axis=0), 0)  # evenly spaced on a segment
    assert np.allclose(traj.world_from_object(23.0)[:3, 3], traj.positions[23])
    with pytest.raises(ValueError):
        traj.world_from_object(23.5)


def test_rotation_is_a_rotation_at_constant_angular_velocity_about_the_axis():
    traj = sample(7, rotation_deg=(60.0, 90.0))
    rs = [traj.world_from_object(float(t))[:3, :3] / traj.scale for t in range(24)]
    for r in rs:
        assert np.allclose(r @ r.T, np.eye(3), atol=1e-12) and np.linalg.det(r) == pytest.approx(1.0)
    steps = [rs[t + 1] @ rs[t].T for t in range(23)]
    total = traj.angles[-1]
    for step in steps:
        assert rotation_angle(step) == pytest.approx(total / 23, abs=1e-9)
        axis = np.array([step[2, 1] - step[1, 2], step[0, 2] - step[2, 0], step[1, 0] - step[0, 1]])
        assert np.allclose(axis / np.linalg.norm(axis), traj.axis, atol=1e-9)
    # Half-way between instants: half the step.
    half = traj.rotation(3.5) @ traj.rotation(3.0).T
    assert np.allclose(half, axis_angle_to_matrix(traj.axis, total / 46), atol=1e-12)


def test_base_orientation_and_axis_are_spread_over_the_sphere():
    axes = np.array([sample(s).axis for s in range(400)])
    assert np.allclose(np.linalg.norm(axes, axis=1), 1.0)
    assert np.abs(axes.mean(axis=0)).max() < 0.1  # uniform on the sphere has mean 0
    quats = np.array([sample(s).base_quat for s in range(400)])
    assert (quats[:, 0] >= 0).all() and np.allclose(np.linalg.norm(quats, axis=1), 1.0)


def test_opencv_and_blender_projections_agree():
    traj = sample(11)
    vertices = np.random.default_rng(0).uniform(-0.4, 0.4, (50, 3))  # object coordinates
    k = CAM.intrinsics()
    for t in (0.0, 7.25, 11.5, 23.0):
        world = (traj.world_from_object(t) @ np.c_[vertices, np.ones(50)].T).T[:, :3]
        x = (traj.camera_from_object(t) @ np.c_[vertices, np.ones(50)].T).T[:, :3]
        assert (x[:, 2] > 0).all()  # OpenCV: in front means z > 0
        uv_cv = (k @ (x / x[:, 2:3]).T).T[:, :2]
        assert np.allclose(uv_cv, CAM.project(world), atol=1e-9)
    assert np.array_equal(traj.camera_from_object(2.0), BLENDER_TO_OPENCV @ traj.world_from_object(2.0))


def test_job_is_json_and_round_trips():
    traj = sample(2)
    job = json.loads(json.dumps(traj.to_job()))
    assert set(job) == {"positions", "axis", "angles", "base_quat", "scale"}
    assert len(job["positions"]) == 24 and len(job["angles"]) == 24 and len(job["base_quat"]) == 4
    back = Trajectory.from_job(job)
    assert np.array_equal(back.world_from_object(9.3), traj.world_from_object(9.3))


def test_impossible_settings_raise_a_user_error():
    with pytest.raises(BlurgenError, match="could not place a trajectory: .*widen"):
        sample(0, translation=(20.0, 30.0), max_tries=200)
    with pytest.raises(BlurgenError):
        sample(0, depth=(3.0, 2.0))


def test_mean_speed_px():
    traj = Trajectory(positions=np.linspace([0, 0, -2.0], [0.46, 0, -2.0], 24), axis=[0, 0, 1.0],
                      angles=np.zeros(24), base_quat=[1.0, 0, 0, 0], scale=1.0)
    assert mean_speed_px(traj, CAM) == pytest.approx(CAM.fx * 0.46 / 2 / 23)
