"""AssetManifest: validation, round trip, paths, lookups, filters, shipped manifests."""

from __future__ import annotations

import json
import re

import pytest

from blurgen.assets.manifest import AssetManifest, builtin_names
from blurgen.errors import BlurgenError


def _manifest(data_dir: str = "data") -> AssetManifest:
    assets = {
        "02691156_abc123": {"category": "02691156", "path": "02691156/abc123/models/model_normalized.obj",
                            "license": "CC0", "metadata": {"faces": 12, "broken": None}},
        "02691156_abd999": {"category": "02691156", "path": "02691156/abd999/models/model_normalized.obj",
                            "license": "CC0", "metadata": {"faces": 0, "broken": "empty OBJ (no faces)"}},
        "bg_0001": {"category": "background", "path": "bg/bg_0001.jpg", "license": "CC0",
                    "metadata": {"width": 640, "broken": None, "duplicate_of": "bg_0000"}},
        "bg_0000": {"category": "background", "path": "bg/bg_0000.jpg", "license": "CC0",
                    "metadata": {"width": 640, "broken": None, "duplicate_of": None}},
    }
    return AssetManifest("test", "1", data_dir, assets)


def test_round_trip_is_deterministic(tmp_path):
    m = _manifest()
    path = m.save(tmp_path / "sub" / "m.json")
    text = path.read_text()
    assert text == json.dumps(json.loads(text), sort_keys=True, indent=2) + "\n"
    loaded = AssetManifest.load(path)
    assert loaded.to_dict() == m.to_dict()
    loaded.save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == path.read_bytes()
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name != "m.json"]  # no temp files left


def test_queries_and_paths(tmp_path):
    path = _manifest().save(tmp_path / "m.json")
    m = AssetManifest.load(path)
    assert m.ids() == sorted(m.assets) and m.ids("background") == ["bg_0000", "bg_0001"]
    assert m.categories() == ["02691156", "background"]
    assert m.path_of("bg_0000") == tmp_path / "data" / "bg" / "bg_0000.jpg"  # relative to the manifest
    absolute = AssetManifest.load(path, data_dir=tmp_path / "elsewhere")
    assert absolute.path_of("bg_0000") == tmp_path / "elsewhere" / "bg" / "bg_0000.jpg"
    assert m.problem("02691156_abd999") == "empty OBJ (no faces)"
    assert m.problem("bg_0001") == "duplicate of bg_0000"
    assert m.problem("bg_0000") is None
    assert m.filter(usable=True).ids() == ["02691156_abc123", "bg_0000"]
    assert m.filter(usable=False).ids() == ["02691156_abd999", "bg_0001"]
    assert m.filter(categories=["background"], where=lambda i, e: e["metadata"]["width"] > 0).ids() == ["bg_0000", "bg_0001"]
    assert m.filter(ids=["bg_0000"]).ids() == ["bg_0000"]


def test_unknown_id_suggests_the_closest():
    with pytest.raises(BlurgenError, match=r"unknown asset id 'bg_00001'.*did you mean 'bg_0001'"):
        _manifest().get("bg_00001")
    with pytest.raises(BlurgenError) as info:
        _manifest().path_of("zzz")
    assert "did you mean" not in str(info.value)


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.pop("data_dir"), "missing key 'data_dir'"),
    (lambda d: d.update(asets={}), "unknown key 'asets' (did you mean 'assets'?)"),
    (lambda d: d["assets"]["bg_0000"].pop("license"), "asset 'bg_0000': missing key 'license'"),
    (lambda d: d["assets"]["bg_0000"].update(path="/etc/passwd"), "asset 'bg_0000': 'path' must be a relative"),
    (lambda d: d["assets"]["bg_0000"].update(path="../up.jpg"), "asset 'bg_0000': 'path' must be a relative"),
    (lambda d: d["assets"]["bg_0000"].update(metadata=[]), "asset 'bg_0000': 'metadata' must be an object"),
    (lambda d: d["assets"]["bg_0000"].update(category=3), "asset 'bg_0000': 'category' must be a non-empty string"),
    (lambda d: d.update(version=2), "'version' must be a string"),
])
def test_validation_names_the_asset_and_key(tmp_path, mutate, message):
    data = _manifest().to_dict()
    data = json.loads(json.dumps(data))
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(BlurgenError, match=re.escape(message)) as info:
        AssetManifest.load(path)
    assert "\n" not in str(info.value)


def test_load_errors(tmp_path):
    with pytest.raises(BlurgenError, match="manifest not found"):
        AssetManifest.load(tmp_path / "absent.json")
    (tmp_path / "broken.json").write_text('{"name": "x",')
    with pytest.raises(BlurgenError, match="not valid JSON"):
        AssetManifest.load(tmp_path / "broken.json")


def test_builtin_manifests_load():
    assert {"demo_objects", "demo_backgrounds"} <= set(builtin_names())
    objects = AssetManifest.builtin("demo_objects")
    assert len(objects) == 30 and len(objects.categories()) == 6
    assert all(objects.problem(i) is None for i in objects.ids())
    with pytest.raises(BlurgenError, match="did you mean 'demo_objects'"):
        AssetManifest.builtin("demo_object")
