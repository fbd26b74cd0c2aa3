"""ShapeNet scanner: counts, texture checks, defect reasons, category ranking, CLI."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner
from fixtures_shapenet import AIRPLANE, CHAIR, MAX_FACES, TELEPHONE, make_shapenet_tree, obj_text

from blurgen.assets.manifest import AssetManifest
from blurgen.assets.obj_stats import count_obj, mtl_textures
from blurgen.assets.shapenet_scan import scan_shapenet
from blurgen.cli import main
from blurgen.errors import BlurgenError


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    root = tmp_path_factory.mktemp("shapenet")
    return root, make_shapenet_tree(root)


def test_counts_flags_and_reasons(tree):
    root, expect = tree
    scan = scan_shapenet(root, exclude_synsets=(), max_faces=MAX_FACES)
    m = scan.manifest
    assert sorted(m.ids()) == sorted(expect)
    assert m.name == "shapenet_core_v2" and m.data_dir == str(root.resolve())
    for asset_id, (v, f, textured, broken) in expect.items():
        meta = m.get(asset_id)["metadata"]
        assert (meta["vertices"], meta["faces"], meta["textured"], meta["broken"]) == (v, f, textured, broken), asset_id
    miss = m.get(f"{CHAIR}_c_missing_tex")["metadata"]
    assert miss["missing_textures"] == ["../images/texture1.png"] and miss["textures_ok"] is False
    assert m.get(f"{CHAIR}_c_fine3")["metadata"]["textures"] == ["../images/texture0.jpg", "../images/bump.png"]
    assert m.get(f"{AIRPLANE}_a_fine")["metadata"]["category_name"] == "airplane"
    assert m.get(f"{TELEPHONE}_t_fine0")["metadata"]["category_name"] == "telephone"
    entry = m.get(f"{AIRPLANE}_a_fine")
    assert entry["path"] == f"{AIRPLANE}/a_fine/models/model_normalized.obj"
    assert entry["license"] == "ShapeNet terms of use"
    assert m.path_of(f"{AIRPLANE}_a_fine").is_file()
    assert m.problem(f"{CHAIR}_c_empty") == "empty OBJ (no faces)"
    assert len(m.filter(usable=True)) == sum(1 for e in expect.values() if e[3] is None)


def test_summary_rows(tree):
    root, _ = tree
    scan = scan_shapenet(root, exclude_synsets=(), max_faces=MAX_FACES)
    rows = {r.synset: r for r in scan.summary}
    chair = rows[CHAIR]
    assert (chair.models, chair.textured, chair.usable_textured) == (9, 8, 3)
    assert chair.broken == {"textures missing": 1, "empty OBJ": 1, "MTL missing": 1, "unparsable OBJ": 1,
                            "huge mesh": 1, "no OBJ": 1}
    assert (rows[AIRPLANE].models, rows[AIRPLANE].textured, rows[AIRPLANE].usable_textured) == (3, 2, 2)
    assert [r.synset for r in scan.summary] == [TELEPHONE, CHAIR, AIRPLANE]  # rank order


def test_top_categories_and_telephone_exclusion(tree):
    root, _ = tree
    default = scan_shapenet(root, top_categories=1, max_faces=MAX_FACES)  # telephone excluded by default
    assert default.manifest.categories() == [CHAIR] and default.excluded == [TELEPHONE]
    assert len(default.manifest) == 9  # broken chairs stay in, flagged
    assert scan_shapenet(root, top_categories=1, exclude_synsets=(), max_faces=MAX_FACES).manifest.categories() == [TELEPHONE]
    two = scan_shapenet(root, top_categories=2, max_faces=MAX_FACES)
    assert two.manifest.categories() == [AIRPLANE, CHAIR]
    assert [r.kept for r in two.summary] == [True, True]
    # Without a face limit the huge chair is usable.
    assert scan_shapenet(root, max_faces=None).manifest.problem(f"{CHAIR}_c_huge") is None


def test_parallel_scan_equals_serial(tree):
    root, _ = tree
    serial = scan_shapenet(root, exclude_synsets=(), max_faces=MAX_FACES, jobs=1)
    parallel = scan_shapenet(root, exclude_synsets=(), max_faces=MAX_FACES, jobs=2)
    assert parallel.manifest.to_json() == serial.manifest.to_json()


@pytest.mark.parametrize("chunk", [1, 2, 3, 4, 5, 7, 64, 1 << 20])
def test_count_obj_across_chunk_boundaries(tmp_path, chunk):
    path = tmp_path / "m.obj"
    path.write_text(obj_text(23, 31, crlf=True), newline="")
    counts = count_obj(path, chunk_size=chunk)
    assert (counts.vertices, counts.faces, counts.binary) == (23, 31, False)
    assert counts.mtllibs == ("model_normalized.mtl",)
    # A file that starts with a vertex line (no leading newline) counts it too.
    path.write_bytes(b"v 1 2 3\nv 4 5 6\nf 1 2 1")
    assert (count_obj(path, chunk).vertices, count_obj(path, chunk).faces) == (2, 1)


def test_mtl_texture_options_and_windows_paths(tmp_path):
    mtl = tmp_path / "m.mtl"
    mtl.write_text("newmtl a\nmap_Kd -s 1 1 1 -o 0 0 0 -clamp on ..\\images\\tex 0.jpg\n"
                   "map_Kd ../images/a.png\nbump -bm 0.5 ../images/n.png\nmap_kd ../images/a.png\nKd 1 1 1\n")
    assert mtl_textures(mtl) == ["../images/tex 0.jpg", "../images/a.png", "../images/n.png"]


def test_errors_are_one_line(tmp_path):
    with pytest.raises(BlurgenError, match="not found"):
        scan_shapenet(tmp_path / "nope")
    with pytest.raises(BlurgenError, match="no taxonomy.json"):
        scan_shapenet(tmp_path)
    (tmp_path / "taxonomy.json").write_text("[]")
    with pytest.raises(BlurgenError, match="no models found"):
        scan_shapenet(tmp_path)


def test_cli_scan_shapenet(tree, tmp_path):
    root, expect = tree
    out = tmp_path / "sn.json"
    runner = CliRunner()
    result = runner.invoke(main, ["assets", "scan-shapenet", "--root", str(root), "--out", str(out),
                                  "--top-categories", "2", "--max-faces", str(MAX_FACES)])
    assert result.exit_code == 0, result.output
    assert "huge mesh" in result.output and "excluded synsets (not scanned): 04401088" in result.output
    manifest = AssetManifest.load(out)
    assert manifest.categories() == [AIRPLANE, CHAIR]
    assert json.loads(out.read_text())["name"] == "shapenet_core_v2"
    result = runner.invoke(main, ["assets", "scan-shapenet", "--root", str(root), "--out", str(out),
                                  "--exclude-synset", "none", "--top-categories", "1", "--max-faces", "100"])
    assert result.exit_code == 0 and AssetManifest.load(out).categories() == [TELEPHONE]

    missing = runner.invoke(main, ["assets", "scan-shapenet", "--root", str(tmp_path / "absent"), "--out", str(out)])
    assert missing.exit_code == 2
    assert missing.output.strip().count("\n") == 0 and "ShapeNet root not found" in missing.output
