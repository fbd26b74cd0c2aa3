"""`blurgen assets scan-meshes` and the bounds every scanner records (no Blender: files written here).

Oracles: the boxes of the points the fixtures wrote (numpy min/max, or a sphere's exact box), the
fixture's own vertex and triangle counts, and hand-made defects.
"""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.assets import AssetManifest
from blurgen.assets.bounds import Bounds
from blurgen.assets.gltf_stats import gltf_stats
from blurgen.assets.mesh_scan import find_meshes, scan_meshes
from blurgen.assets.obj_stats import count_obj
from blurgen.assets.ply_stats import ply_stats
from blurgen.assets.shapenet_scan import scan_shapenet
from blurgen.cli import main
from blurgen.errors import BlurgenError
from fixtures_shapenet import make_shapenet_tree
from mesh_fixtures import sphere, write_gltf, write_obj, write_ply


def test_obj_bounds_are_the_box_of_its_v_lines_for_any_chunk_size(tmp_path):
    rng = np.random.default_rng(3)
    points = rng.normal(scale=40.0, size=(57, 3)) + [1e4, -3e3, 7.0]
    lines = ["# v 1e9 1e9 1e9 is a comment", "mtllib m.mtl"]
    lines += [f"v {x!r} {y!r} {z!r}" + (" 1.0" if i % 5 == 0 else "") + (" 0.1 0.2 0.3" if i % 7 == 0 else "")
              for i, (x, y, z) in enumerate(points.tolist())]
    lines += ["vt 5e9 5e9", "vn 0 0 1e9", "f 1 2 3"]
    path = tmp_path / "m.obj"
    path.write_text("\r\n".join(lines))  # CRLF, and no newline after the last line
    expected = (tuple(points.min(axis=0)), tuple(points.max(axis=0)))
    for chunk in (1, 2, 3, 7, 64, 1 << 20):
        counts = count_obj(path, chunk)
        assert (counts.bounds.min, counts.bounds.max) == expected, chunk
        assert (counts.vertices, counts.faces, counts.bad_vertices) == (57, 1, False)


def test_a_vertex_line_without_three_numbers_is_unparsable(tmp_path):
    path = tmp_path / "m.obj"
    path.write_text("v 1 2 3\nv 1 two 3\nf 1 1 1\n")
    assert count_obj(path).bad_vertices
    path.write_text("v 1 2\nf 1 1 1\n")
    assert count_obj(path).bad_vertices


def test_gltf_boxes_the_scene_after_its_node_transforms(tmp_path):
    v, uv, tris = sphere(0.5)
    # turned 90 degrees about z, scaled by 2 along its own x, moved: the box is computed by hand
    node = {"translation": [10.0, -5.0, 2.0], "rotation": [0.0, 0.0, math.sqrt(0.5), math.sqrt(0.5)],
            "scale": [2.0, 1.0, 1.0]}
    for name in ("a.gltf", "b.glb"):
        stats = gltf_stats(write_gltf(tmp_path / name, v, uv, tris, node=node))
        # local x (extent ±1 after the scale) becomes world y; local y (±0.5) becomes world -x
        assert stats.bounds.min == pytest.approx((9.5, -6.0, 1.5), abs=1e-6)
        assert stats.bounds.max == pytest.approx((10.5, -4.0, 2.5), abs=1e-6)
        assert (stats.vertices, stats.faces) == (len(v), len(tris))
        assert stats.coloured and stats.missing_buffers == ()
    assert gltf_stats(tmp_path / "a.gltf").images == ("a.png",)
    assert gltf_stats(tmp_path / "b.glb").images == ()  # embedded


def test_gltf_without_readable_positions_falls_back_to_the_accessor_box(tmp_path):
    v, uv, tris = sphere(0.5, (1.0, 2.0, 3.0))
    path = write_gltf(tmp_path / "a.gltf", v, uv, tris, node={"matrix": [2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 0,
                                                                         1, 1, 1, 1]})
    gltf = json.loads(path.read_text())
    gltf["accessors"][0]["componentType"] = 5123  # not float: the reader does not decode it
    path.write_text(json.dumps(gltf))
    stats = gltf_stats(path)
    assert stats.bounds.min == pytest.approx((2.0, 4.0, 6.0), abs=1e-6)  # 2 * (0.5, 1.5, 2.5) + 1
    assert stats.bounds.max == pytest.approx((4.0, 6.0, 8.0), abs=1e-6)


@pytest.mark.parametrize("binary", [True, False])
def test_ply_boxes_its_vertex_block(tmp_path, binary):
    rng = np.random.default_rng(1)
    points = rng.uniform(-3e3, 5e3, size=(40, 3))
    tris = np.array([[0, 1, 2], [2, 3, 4]])
    stats = ply_stats(write_ply(tmp_path / "m.ply", points, tris, binary=binary))
    stored = points.astype(np.float32).astype(np.float64)
    assert stats.bounds.min == tuple(stored.min(axis=0)) and stats.bounds.max == tuple(stored.max(axis=0))
    assert (stats.vertices, stats.faces, stats.coloured) == (40, 2, True)


def test_bounds_flag_a_box_render_cannot_normalise():
    assert Bounds((0, 0, 0), (1, 2, 2)).problem() is None and Bounds((0, 0, 0), (1, 2, 2)).diagonal == 3.0
    assert "degenerate" in Bounds((1, 1, 1), (1, 1, 1)).problem()
    assert "degenerate" in Bounds((1e6, 0, 0), (1e6 + 1e-3, 0, 0)).problem()  # below float32's grain there
    assert Bounds((1e6, 0, 0), (1e6 + 1e3, 0, 0)).problem() is None
    assert "non-finite" in Bounds((0, 0, 0), (math.inf, 1, 1)).problem()


MAX_FACES = 1000  # a sphere has 960 faces


def collection(root):
    """Every layout and defect: id -> the broken reason kind expected (None: usable)."""
    v, uv, tris = sphere(0.5, (100.0, 0.0, 0.0))
    write_obj(root / "mugs" / "a.obj", v, uv, tris)
    write_gltf(root / "mugs" / "b.glb", v, uv, tris)
    write_ply(root / "mugs" / "c.ply", v, tris)
    write_obj(root / "mugs" / "c.obj", v, uv, tris)                     # same stem: the OBJ is kept
    write_obj(root / "cars" / "untextured.obj", v, uv, tris, texture=None)
    write_obj(root / "cars" / "no_tex.obj", v, uv, tris, texture="gone.png", make_texture=False)
    write_gltf(root / "cars" / "no_image.gltf", v, uv, tris, make_texture=False)
    write_gltf(root / "cars" / "no_bin.gltf", v, uv, tris)
    (root / "cars" / "no_bin.bin").unlink()
    (root / "cars" / "empty.obj").write_bytes(b"")
    (root / "cars" / "junk.glb").write_bytes(b"glTF" + b"\x02\x00\x00\x00" + b"\xff" * 7)
    (root / "cars" / "junk.ply").write_bytes(b"ply\nformat ascii 1.0\nelement vertex 2\n")
    point = np.zeros((3, 3)) + 5.0
    write_obj(root / "cars" / "point.obj", point, np.zeros((3, 2)), np.array([[0, 1, 2]]), texture=None)
    write_obj(root / "chairs" / "many.obj", v, uv, np.vstack([tris, tris]))  # 1920 faces > MAX_FACES
    (root / ".cache" / "x").mkdir(parents=True)
    write_obj(root / ".cache" / "x" / "hidden.obj", v, uv, tris)
    return {"mugs/a": None, "mugs/b": None, "mugs/c": None, "cars/untextured": None,
            "cars/no_tex": "textures missing", "cars/no_image": "textures missing",
            "cars/no_bin": "buffers missing", "cars/empty": "empty OBJ", "cars/junk": "unparsable glTF",
            "cars/point": "degenerate bounding box", "chairs/many": "huge mesh"}


def test_scan_meshes_finds_every_layout_and_flags_each_defect(tmp_path):
    root = tmp_path / "meshes"
    expected = collection(root)
    scan = scan_meshes(root, max_faces=MAX_FACES)
    m = scan.manifest
    assert sorted(m.ids()) == sorted(expected)
    for asset_id, kind in expected.items():
        broken = m.get(asset_id)["metadata"]["broken"]
        assert (broken.split(" (")[0] if broken else None) == kind, (asset_id, broken)
    assert m.get("mugs/c")["path"] == "mugs/c.obj" and m.get("mugs/b")["metadata"]["format"] == "glb"
    assert m.get("mugs/a")["category"] == "mugs" and m.get("mugs/a")["metadata"]["textured"]
    assert not m.get("cars/untextured")["metadata"]["textured"]
    diag = math.sqrt(3.0)  # radius 0.5: the box is the unit cube about (100, 0, 0)
    for asset_id in ("mugs/a", "mugs/b", "mugs/c"):
        bounds = m.get(asset_id)["metadata"]["bounds"]
        assert bounds["center"] == pytest.approx([100.0, 0.0, 0.0], abs=1e-5)
        assert bounds["diagonal"] == pytest.approx(diag, rel=1e-6)


def test_the_chair_is_huge_only_above_max_faces(tmp_path):
    root = tmp_path / "meshes"
    v, uv, tris = sphere()
    write_obj(root / "chairs" / "many.obj", v, uv, tris)
    assert scan_meshes(root, max_faces=len(tris)).manifest.problem("chairs/many") is None
    assert scan_meshes(root, max_faces=len(tris) - 1).manifest.problem("chairs/many").startswith("huge mesh")


def test_one_folder_per_model_takes_a_given_category(tmp_path):
    # Google Scanned Objects: <model>/meshes/model.obj with its texture elsewhere in the folder
    v, uv, tris = sphere()
    for name in ("Shoe_A", "Toy_B"):
        write_obj(tmp_path / name / "meshes" / "model.obj", v, uv, tris, texture="../materials/textures/texture.png")
    assert find_meshes(tmp_path) == ["Shoe_A/meshes/model.obj", "Toy_B/meshes/model.obj"]
    m = scan_meshes(tmp_path, category="gso").manifest
    assert m.ids() == ["Shoe_A/meshes/model", "Toy_B/meshes/model"]
    assert m.categories() == ["gso"] and all(m.problem(i) is None for i in m.ids())
    assert scan_meshes(tmp_path).manifest.categories() == ["Shoe_A", "Toy_B"]  # without: the first folder


def test_scan_meshes_is_the_same_with_several_processes(tmp_path):
    root = tmp_path / "meshes"
    collection(root)
    one = scan_meshes(root, max_faces=MAX_FACES).manifest.to_json()
    assert scan_meshes(root, max_faces=MAX_FACES, jobs=2).manifest.to_json() == one


def test_cli_writes_a_manifest_render_can_load_and_refuses_a_missing_root(tmp_path):
    root = tmp_path / "meshes"
    collection(root)
    result = CliRunner().invoke(main, ["assets", "scan-meshes", "--root", str(root), "--out",
                                       str(tmp_path / "m.json"), "--max-faces", str(MAX_FACES)])
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and "degenerate bounding box" in result.output
    m = AssetManifest.load(tmp_path / "m.json")
    assert m.root() == root.resolve() and len(m) == 11
    result = CliRunner().invoke(main, ["assets", "scan-meshes", "--root", str(tmp_path / "nope"), "--out",
                                       str(tmp_path / "n.json")])
    assert result.exit_code == 2 and "mesh folder not found" in result.output
    assert not (tmp_path / "n.json").exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(BlurgenError, match="no meshes below"):
        scan_meshes(empty)


def test_the_shapenet_scan_records_each_models_bounds(tmp_path):
    root = tmp_path / "ShapeNetCore.v2"
    make_shapenet_tree(root)
    m = scan_shapenet(root, exclude_synsets=()).manifest
    for asset_id in m.ids():
        meta = m.get(asset_id)["metadata"]
        if meta["vertices"] == 0 or meta["broken"] and meta["broken"].startswith(("unparsable", "no OBJ")):
            continue
        # the fixture's vertices are (i, i % 3 + 0.5, -i - 0.25) for i < n
        n = meta["vertices"]
        points = np.array([(i, i % 3 + 0.5, -i - 0.25) for i in range(n)], float)
        assert meta["bounds"]["min"] == points.min(axis=0).tolist(), asset_id
        assert meta["bounds"]["max"] == points.max(axis=0).tolist(), asset_id


def test_a_copied_tree_scans_to_the_same_manifest_but_its_root(tmp_path):
    root = tmp_path / "a"
    collection(root)
    shutil.copytree(root, tmp_path / "b")
    a, b = scan_meshes(root, max_faces=MAX_FACES).manifest, scan_meshes(tmp_path / "b", max_faces=MAX_FACES).manifest
    assert a.assets == b.assets and a.data_dir != b.data_dir


@pytest.mark.parametrize("rows, message", [
    (b"0 0 0\n1 1\n2 2 2\n", "vertex lines hold 8 numbers, not 3 x 3"),
    (b"0 0 0\n1 x 1\n2 2 2\n", "vertex line with a non-number"),
])
def test_a_bad_ascii_ply_vertex_block_is_unparsable(tmp_path, rows, message):
    header = b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\nproperty float z\n"
    header += b"element face 1\nproperty list uchar int vertex_indices\nend_header\n"
    (tmp_path / "m" / "c").mkdir(parents=True)
    (tmp_path / "m" / "c" / "bad.ply").write_bytes(header + rows + b"3 0 1 2\n")
    meta = scan_meshes(tmp_path / "m").manifest.get("c/bad")["metadata"]
    assert meta["broken"] == f"unparsable PLY ({message})"
