"""Render normalises every mesh, whatever its units, origin and format (real Blender, tiny renders).

Spheres 1000 times too small or too large, centred tens of diagonals away from their file's
origin, in OBJ, glTF (external buffer, and a GLB with a node transform) and PLY (vertex colours,
and an ASCII one with a TextureFile), are rendered
with a fixed size, depth and no motion. The oracle is the pinhole projection of a sphere: the
object's area in pixels and its centre follow from ``trajectory.object_size`` and
``trajectory.depth`` alone. Unnormalised, the small ones would vanish and the large ones fill
the frame. Each check runs on the labels' exact coverage (computed by the parent from the
triangles and the poses) and on Blender's own alpha (``labels.coverage: render``), so a wrong
transform inside Blender shows too. (Moving far-off meshes: tests/test_render_mesh_motion.py.)
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from blurgen.assets.config import DemoAssetsConfig
from blurgen.assets.demo import make_demo_assets
from blurgen.assets.mesh_scan import MeshScan, scan_meshes
from blurgen.config import resolve_config
from blurgen.render.blender import script_path
from blurgen.render.config import RenderConfig
from blurgen.render.pipeline import render_dataset
from blurgen.shards import ShardDataset
from mesh_fixtures import sphere, write_gltf, write_obj, write_ply

pytestmark = pytest.mark.slow  # launches Blender

W, H = 96, 72
SIZE, DEPTH = 1.2, 2.5  # bounding-box diagonal (m) and distance of the centre (m)
FOCAL_PX = 35.0 / 36.0 * W
# 90 degrees about +y, as glTF writes it (x, y, z, w)
QUARTER_TURN_Y = [0.0, math.sqrt(0.5), 0.0, math.sqrt(0.5)]


def mesh_folder(root: Path) -> dict[str, tuple[float, tuple[float, float, float]]]:
    """Five spheres, each as ``category/name``: id -> (radius, centre) in its file's coordinates."""
    made = {}
    v, uv, tris = sphere(0.0005, (0.03, -0.02, 0.045))       # 1 mm box, 33 diagonals off the origin
    write_obj(root / "small" / "ball_obj.obj", v, uv, tris)
    made["small/ball_obj"] = (0.0005, (0.03, -0.02, 0.045))
    v, uv, tris = sphere(0.0005, (-0.04, 0.01, 0.02))
    write_gltf(root / "small" / "ball_gltf.gltf", v, uv, tris)
    made["small/ball_gltf"] = (0.0005, (-0.04, 0.01, 0.02))
    # a unit sphere placed by its node: scaled by 1000, turned, and moved 30 km
    v, uv, tris = sphere(0.5, (0.0, 0.0, 0.0))
    write_gltf(root / "big" / "ball_glb.glb", v, uv, tris,
               node={"translation": [3e4, -2e4, 4.5e4], "rotation": QUARTER_TURN_Y, "scale": [1e3] * 3})
    made["big/ball_glb"] = (500.0, (3e4, -2e4, 4.5e4))
    v, uv, tris = sphere(500.0, (-4e4, 2.5e4, 3e4))
    write_ply(root / "big" / "ball_ply.ply", v, tris)
    made["big/ball_ply"] = (500.0, (-4e4, 2.5e4, 3e4))
    v, uv, tris = sphere(0.0005, (0.01, 0.05, -0.02))
    write_ply(root / "small" / "ball_ply_textured.ply", v, tris, colours=False, uvs=uv, binary=False)
    made["small/ball_ply_textured"] = (0.0005, (0.01, 0.05, -0.02))
    return made


def meshes_config(root: Path, *overrides: str, backgrounds: int = 1) -> tuple[RenderConfig, MeshScan]:
    """A W x H render config over the meshes below ``root / "meshes"`` (scanned here), with tiny
    demo backgrounds and every object in the train split; ``overrides`` come last."""
    scan = scan_meshes(root / "meshes")
    scan.manifest.save(root / "meshes.json")
    demo = make_demo_assets(root / "demo", DemoAssetsConfig(categories=1, objects_per_category=1, texture_size=16,
                                                            backgrounds=backgrounds, background_width=160,
                                                            background_height=120, preview=False))
    return resolve_config(RenderConfig, "render", preset="demo", overrides=[
        f"assets.objects={root / 'meshes.json'}", f"assets.backgrounds={demo.backgrounds}",
        "trajectory.per_object=1", f"camera.width={W}", f"camera.height={H}", "split.train=1.0", "split.val=0",
        "output.preview=false", *overrides]), scan


@pytest.fixture(scope="module", params=["exact", "render"])
def rendered(request, tmp_path_factory) -> tuple[list[dict], dict, MeshScan]:
    """The samples of one render of every sphere, the spheres made, and their scan.

    Their alpha is the exact coverage, or Blender's own (64 spp: little noise on the outline).
    """
    root = tmp_path_factory.mktemp("meshes")
    made = mesh_folder(root / "meshes")
    config, scan = meshes_config(
        root, "assets.objects_per_category=3", f"trajectory.depth=[{DEPTH}, {DEPTH}]",
        f"trajectory.object_size=[{SIZE}, {SIZE}]", "trajectory.translation=[0, 0]", "trajectory.rotation_deg=[0, 0]",
        "trajectory.margin=0.45", "images.max_window=1", "images.flow=true", "cycles.samples=64",
        f"labels.coverage={request.param}", backgrounds=2)
    out = root / "out"
    summary = render_dataset(config, out, progress=False)
    assert summary.count("skipped_items") == {}, summary.describe()
    data = ShardDataset(out)
    return [data[i] for i in range(len(data))], made, scan


def test_the_scan_boxes_every_format_in_its_files_coordinates(rendered):
    _, made, scan = rendered
    assert sorted(scan.manifest.ids()) == sorted(made)
    for asset_id, (radius, centre) in made.items():
        meta = scan.manifest.get(asset_id)["metadata"]
        assert meta["broken"] is None and meta["textured"], (asset_id, meta)
        # float32 formats (glTF, PLY) store the points rounded: compare within their precision
        assert meta["bounds"]["center"] == pytest.approx(centre, rel=1e-6, abs=1e-6 * radius)
        assert meta["bounds"]["diagonal"] == pytest.approx(2 * radius * math.sqrt(3), rel=1e-5)


def test_each_object_has_the_pixel_size_its_configured_size_and_depth_give(rendered):
    samples, made, _ = rendered
    sharp = {s["object_id"]: s for s in samples if int(s["window_count"]) == 0}
    assert sorted(sharp) == sorted(made)
    # a sphere whose bounding box has diagonal SIZE has radius SIZE / (2 sqrt 3); seen from its
    # centre's distance DEPTH on the optical axis its outline is a circle of radius f r / sqrt(Z² - r²)
    r = SIZE / (2 * math.sqrt(3))
    expected_radius = FOCAL_PX * r / math.sqrt(DEPTH ** 2 - r ** 2)
    for asset_id, s in sharp.items():
        alpha = s["alpha"].astype(np.float64)
        radius = math.sqrt(alpha.sum() / math.pi)  # alpha integrates the covered area
        # within 3 %: the centre is up to 5 px off the axis (+0.8 % area), the 32-gon's area is 0.6 % short
        assert radius == pytest.approx(expected_radius, rel=0.03), asset_id
        x0, y0, x1, y1 = s["bbox"].tolist()
        assert abs((x1 - x0) / 2 - expected_radius) < 1.5 and abs((y1 - y0) / 2 - expected_radius) < 1.5
        assert not s["truncated"]
    # the textured PLY wears its red and yellow checkerboard (Blender's PLY importer makes no
    # material: mesh_import builds it from the TextureFile), not a flat grey: red well above blue
    image = sharp["small/ball_ply_textured"]["image"].astype(float)
    inside = sharp["small/ball_ply_textured"]["alpha"] > 0.99
    assert image[inside, 0].mean() - image[inside, 2].mean() > 60


def test_the_stored_pose_maps_the_files_box_centre_onto_the_objects_image_centre(rendered):
    samples, made, _ = rendered
    assert sorted({s["object_id"] for s in samples}) == sorted(made)
    for s in samples:
        _, centre = made[s["object_id"]]
        point = s["pose_start"] @ np.array([*centre, 1.0])
        assert point[2] == pytest.approx(DEPTH, rel=1e-6)  # OpenCV: z forward
        u, v = (s["intrinsics"] @ point[:3])[:2] / point[2]
        alpha = s["alpha"].astype(np.float64)
        ys, xs = np.mgrid[0:H, 0:W] + 0.5
        # a sphere's outline centre lies off its projected centre by (Z / sqrt(Z² - r²))² - 1 of its offset: < 0.5 px here
        assert abs(u - (alpha * xs).sum() / alpha.sum()) < 0.5
        assert abs(v - (alpha * ys).sum() / alpha.sum()) < 0.5


def test_a_still_object_has_zero_flow_so_the_coordinate_layers_are_in_the_files_coordinates(rendered):
    # the exact flow projects each pixel's rendered file coordinates with the stored poses; for an
    # object that does not move it is zero only if those coordinates and poses agree
    samples, made, _ = rendered
    moving = [s for s in samples if int(s["window_count"]) == 1]
    assert sorted(s["object_id"] for s in moving) == sorted(made)
    for s in moving:
        valid = s["flow_valid"][..., 0] & (s["alpha"] > 0.99)
        assert valid.sum() > 100
        assert np.abs(s["flow_fwd"][valid]).max() < 0.05, s["object_id"]


def test_objects_cut_by_the_frame_are_labelled_and_counted_in_the_stats(tmp_path):
    # one sphere 4 m across at 2.5 m: its outline (radius ~45 px) overflows the 72 px high frame
    v, uv, tris = sphere(0.5)
    write_obj(tmp_path / "meshes" / "big" / "ball.obj", v, uv, tris)
    config, _ = meshes_config(tmp_path, "trajectory.object_size=[4, 4]", f"trajectory.depth=[{DEPTH}, {DEPTH}]",
                              "trajectory.translation=[0, 0]", "images.max_window=2", "cycles.samples=2")
    summary = render_dataset(config, tmp_path / "out", progress=False)
    data = ShardDataset(tmp_path / "out")
    truncated = [bool(data[i]["truncated"]) for i in range(len(data))]
    # the oracle: the stored alpha reaches the border of every image
    assert all(truncated) and len(truncated) == summary.samples == 3
    assert all((lambda a: a[0].any() or a[-1].any() or a[:, 0].any() or a[:, -1].any())(data[i]["alpha"] > 0)
               for i in range(len(data)))
    assert summary.count("truncated") == {"train": 3}
    assert "images cut by the frame (kept, by split): train 3" in summary.describe()


def import_in_blender(tmp_path: Path, mesh: Path, body: str):
    """Import ``mesh`` into a rig (mesh_import.MeshCache, in a bpy subprocess), run ``body`` on
    ``rig`` and return what it left in ``out`` (JSON)."""
    result = tmp_path / "rig.json"
    code = "\n".join([
        "import json, sys, numpy as np, bpy",
        f"sys.path.insert(0, {str(script_path().parent)!r})",
        "import mesh_import",
        "bpy.ops.wm.read_factory_settings(use_empty=True)",
        f"rig = mesh_import.MeshCache(bpy.context.scene).get({str(mesh)!r})",
        "bpy.context.view_layer.update()",
        textwrap.dedent(body),
        f"json.dump(out, open({str(result)!r}, 'w'))"])
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path)
    assert result.is_file(), run.stderr[-2000:]
    return json.loads(result.read_text())


def same_points(a: np.ndarray, b: np.ndarray, tolerance: float = 1e-4) -> bool:
    """Every point of ``a`` has one of ``b`` within ``tolerance`` and vice versa (importers may
    drop unused vertices or reorder them)."""
    gap = np.linalg.norm(np.asarray(a)[:, None, :] - np.asarray(b)[None, :, :], axis=2)
    return gap.min(axis=1).max() < tolerance and gap.min(axis=0).max() < tolerance


def test_gltf_node_trees_are_folded_into_the_vertices_in_the_files_coordinates(tmp_path):
    # one sphere mesh used by two nodes: a child (turned and scaled) of a moved parent, and a
    # mirror image elsewhere. Oracle: the node transforms applied by hand to the written points.
    v, uv, tris = sphere(0.5, (0.2, 0.1, -0.3))
    path = write_gltf(tmp_path / "two.gltf", v, uv, tris)
    gltf = json.loads(path.read_text())
    quarter_z = [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)]
    gltf["nodes"] = [{"translation": [5.0, 0.0, 0.0], "children": [1]},
                     {"mesh": 0, "rotation": quarter_z, "scale": [2.0, 2.0, 2.0]},
                     {"mesh": 0, "scale": [-1.0, 1.0, 1.0], "translation": [-5.0, 1.0, 0.0]}]
    gltf["scenes"] = [{"nodes": [0, 2]}]
    path.write_text(json.dumps(gltf))
    turned = 2.0 * (v @ np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]).T) + [5.0, 0.0, 0.0]
    mirrored = v * [-1.0, 1.0, 1.0] + [-5.0, 1.0, 0.0]

    meshes = import_in_blender(tmp_path, path, """
        out = []
        for o in rig.meshes:
            me = o.data
            co = np.empty(len(me.vertices) * 3, np.float32); me.vertices.foreach_get("co", co)
            w = np.array(o.matrix_world)
            points = co.reshape(-1, 3) @ w[:3, :3].T + w[:3, 3]
            normals = np.empty(len(me.polygons) * 3, np.float32); me.polygons.foreach_get("normal", normals)
            centres = np.empty(len(me.polygons) * 3, np.float32); me.polygons.foreach_get("center", centres)
            outward = ((centres.reshape(-1, 3) - co.reshape(-1, 3).mean(axis=0)) * normals.reshape(-1, 3)).sum(axis=1)
            out.append({"points": points.tolist(), "users": me.users, "inward_faces": int((outward <= 0).sum())})
        """)
    assert len(meshes) == 2 and all(m["users"] == 1 for m in meshes)  # each instance its own copy
    assert [m["inward_faces"] for m in meshes] == [0, 0]  # the mirrored copy's faces still face out

    got = [np.array(m["points"]) for m in meshes]
    assert any(same_points(g, turned) for g in got) and any(same_points(g, mirrored) for g in got)


def test_a_mesh_shared_by_two_objects_is_centred_once_and_handed_back_in_the_files_coordinates(tmp_path):
    # a second object of the rig uses the first one's mesh (as a glTF mesh used by several nodes
    # may). Centring must move the shared vertices by -centre once, not once per object, and the
    # triangles the exact coverage rasterises must still be the written points (file coordinates).
    centre = (30.0, -20.0, 10.0)
    v, uv, tris = sphere(0.5, centre)
    path = write_obj(tmp_path / "ball.obj", v, uv, tris)
    got = import_in_blender(tmp_path, path, f"""
        twin = bpy.data.objects.new("twin", rig.meshes[0].data)
        bpy.context.scene.collection.objects.link(twin)
        twin.parent = rig.base
        rig.meshes.append(twin)
        rig.move_origin({centre!r})
        vertices, faces = rig.triangles()
        own = []
        for o in rig.meshes:
            co = np.empty(len(o.data.vertices) * 3, np.float32); o.data.vertices.foreach_get("co", co)
            own.append(co.reshape(-1, 3).tolist())
        out = {{"users": [o.data.users for o in rig.meshes], "own": own, "triangles": vertices.tolist(),
               "dtype": str(vertices.dtype)}}
        """)
    assert got["users"] == [2, 2]  # the case under test: one mesh, two objects
    for own in got["own"]:  # the mesh's own coordinates: centred on its box
        assert same_points(own, v - centre, 1e-5)
    # each object's vertices, in the file's coordinates (float32 at 30 m: within 4e-6)
    triangles = np.array(got["triangles"])
    assert got["dtype"] == "float32" and len(triangles) == 2 * len(got["own"][0])
    assert same_points(triangles, v, 1e-5)
