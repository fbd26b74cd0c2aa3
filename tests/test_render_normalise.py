"""Render's normalisation of a mesh file to the unit object the trajectory moves (no Blender)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from blurgen.assets import AssetManifest
from blurgen.assets.bounds import Bounds
from blurgen.errors import BlurgenError
from blurgen.render.camera import BLENDER_TO_OPENCV, Camera
from blurgen.render.normalise import IDENTITY, TOLERANCE, Normalisation
from blurgen.render.plan import WorkItem
from blurgen.render.prepare import PreparedItem
from blurgen.render.trajectory import sample_trajectory


def box_corners(lo, hi) -> np.ndarray:
    return np.array([[(lo, hi)[bit][axis] for axis, bit in enumerate(bits)]
                     for bits in itertools.product((0, 1), repeat=3)], float)


def test_the_matrix_maps_the_files_box_onto_the_unit_box_at_the_origin():
    lo, hi = (1e4, -250.0, 37.0), (1e4 + 600.0, 50.0, 437.0)  # 600 x 300 x 400: diagonal 781.02...
    n = Normalisation.of_asset("a", {"bounds": Bounds(lo, hi).to_metadata()})
    corners = box_corners(lo, hi) @ n.matrix()[:3, :3].T + n.matrix()[:3, 3]
    assert corners.min(axis=0) == pytest.approx(-corners.max(axis=0))  # centred
    assert np.linalg.norm(corners.max(axis=0) - corners.min(axis=0)) == pytest.approx(1.0)
    assert np.ptp(corners, axis=0) == pytest.approx(np.array([600, 300, 400]) / np.sqrt(600**2 + 300**2 + 400**2))
    assert not n.is_identity and n.to_job()["normalise"]["diagonal"] == pytest.approx(781.0249675906654)


def test_a_box_normalised_within_the_tolerance_is_left_exactly_as_it_is():
    near = Normalisation((0.0, 0.4 * TOLERANCE, 0.0), 1.0 - 0.9 * TOLERANCE)
    assert near.is_identity and near.to_job() == {} and np.array_equal(near.matrix(), np.eye(4))
    assert not Normalisation((0.0, 2 * TOLERANCE, 0.0), 1.0).is_identity
    assert not Normalisation((0.0, 0.0, 0.0), 1.0 + 2 * TOLERANCE).is_identity


def test_the_shipped_demo_objects_are_normalised_within_the_tolerance():
    # measured: centres exactly 0, diagonals within 1.44e-6 of 1 (6-decimal OBJ text)
    demo = AssetManifest.builtin("demo_objects")
    boxes = [Normalisation.of_asset(i, demo.get(i)["metadata"]) for i in demo.ids()]
    assert len(boxes) == 30 and all(b.is_identity for b in boxes)
    assert max(abs(b.diagonal - 1.0) for b in boxes) < 2e-6 and all(b.center == (0.0, 0.0, 0.0) for b in boxes)


@pytest.mark.parametrize("metadata, message", [
    ({}, "object 'm' has no bounds in its manifest .* run blurgen assets scan-shapenet or scan-meshes again"),
    ({"bounds": {"min": [0, 0]}}, "bounds in its manifest are not min/max triples"),
    ({"bounds": Bounds((2, 2, 2), (2, 2, 2)).to_metadata()}, r"cannot be rendered: degenerate bounding box"),
])
def test_an_object_render_cannot_normalise_is_a_one_line_error(metadata, message):
    with pytest.raises(BlurgenError, match=message) as info:
        Normalisation.of_asset("m", metadata)
    assert "\n" not in str(info.value)


def test_the_stored_pose_maps_the_files_box_centre_to_the_trajectorys_point():
    camera = Camera(64, 48, 35.0, 36.0)
    trajectory = sample_trajectory(np.random.default_rng(4), camera)
    item = WorkItem(1, "m", "c", "train", "", 0)
    background = np.zeros((48, 64, 3), np.float32)
    n = Normalisation((300.0, -20.0, 5.0), 40.0)
    moved = PreparedItem(item, trajectory, "bg", background, 1, n)
    for t in (0.0, 7.5, 23.0):
        centre = moved.camera_from_file(t) @ np.array([300.0, -20.0, 5.0, 1.0])
        assert centre == pytest.approx(BLENDER_TO_OPENCV @ np.array([*trajectory.position(t), 1.0]))
        # a point half the file's diagonal (40) from its centre lands half the trajectory's scale away
        corner = moved.camera_from_file(t) @ np.array([310.0, -10.0, 5.0 + np.sqrt(200.0), 1.0])
        assert np.linalg.norm(corner[:3] - centre[:3]) == pytest.approx(trajectory.scale / 2)
    unit = PreparedItem(item, trajectory, "bg", background, 1, IDENTITY)
    assert np.array_equal(unit.camera_from_file(3.0), trajectory.camera_from_object(3.0))
