"""Shard schemas declared in code: the declarations describe what the generators really write
(the golden shards, written before the declarations existed), the writer refuses samples that
disagree with them, readers ask a folder for its schema, and the docs' tables follow them."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from blurgen.cli import main
from blurgen.errors import ShardError
from blurgen.shards import (
    Field,
    Schema,
    ShardDataset,
    ShardWriter,
    folder_schema,
    get_schema,
    register_schema,
    verify_shard,
)
from blurgen.shards.schema_docs import schema_table, update_docs
from blurgen.shards.schemas import COMPOSITE, FLOWPAIRS, GENERATOR_SCHEMAS, RENDER

GOLDEN = Path(__file__).parent / "golden"
DOCS = Path(__file__).parent.parent / "docs" / "shard-format.md"
GOLDEN_SHARDS = sorted(GOLDEN.glob("*/*.h5"))


def golden_samples(job: str) -> list[dict]:
    """The samples of a golden job, as the old code wrote them (the truth about each field)."""
    with ShardDataset(GOLDEN / job) as ds:
        return list(ds)


def writer(folder: Path, schema: str = "blurgen.render/1") -> ShardWriter:
    return ShardWriter(folder, schema=schema, split="test", task_index=0, num_tasks=1, seed=0,
                       config_json="{}")


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ----------------------------------------------------------------- declarations vs golden shards

@pytest.mark.parametrize("path", GOLDEN_SHARDS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_every_golden_shard_has_exactly_its_declared_fields(path):
    with h5py.File(path, "r") as f:
        schema = get_schema(f.attrs["schema"])
        stored = {name: f[name] for name in f}
        if f.attrs["num_samples"] == 0:
            assert not stored  # an empty shard fixes no shapes and holds no datasets
            return
        h, w = f["image"].shape[1:3]
        required = {fd.name for fd in schema.fields if not fd.optional}
        assert required <= set(stored) <= set(schema.names), path
        for name, dset in stored.items():
            declared = schema.field(name)
            if declared.dtype == "str":
                assert h5py.check_string_dtype(dset.dtype).encoding == "utf-8", name
                assert declared.shape == () and dset.ndim == 1, name
            else:
                assert dset.dtype == np.dtype(declared.dtype), name
                assert dset.shape[1:] == tuple({"H": h, "W": w}.get(d, d) for d in declared.shape), name


def test_the_golden_jobs_cover_every_generator_schema_and_its_optional_fields():
    seen = {}
    for path in GOLDEN_SHARDS:
        with h5py.File(path, "r") as f:
            seen.setdefault(f.attrs["schema"], set()).update(f)
    assert set(seen) == {s.name for s in GENERATOR_SCHEMAS}
    for schema in GENERATOR_SCHEMAS:  # so the test above checked every declared field once
        assert seen[schema.name] == set(schema.names), schema.name


def test_verify_reports_a_dataset_that_disagrees_with_the_schema(tmp_path):
    path = tmp_path / "test-00000-of-00001.h5"
    shutil.copy(GOLDEN / "render_demo" / path.name, path)
    assert verify_shard(path, None) == []
    with h5py.File(path, "r+") as f:
        alpha = f["alpha"][()].astype(np.float64)
        del f["alpha"]
        f.create_dataset("alpha", data=alpha, chunks=(1, *alpha.shape[1:]), fletcher32=True)
        f.create_dataset("extra", data=np.zeros(len(alpha), np.int8), fletcher32=True)
    assert verify_shard(path, None) == [
        "field 'alpha' has dtype float64, schema blurgen.render/1 declares float32 (H, W)",
        "dataset 'extra' is not in schema blurgen.render/1"]


# ----------------------------------------------------------------- the writer checks samples

def test_golden_samples_are_accepted_as_they_are(tmp_path):
    for job, schema in (("render_demo", RENDER), ("render_flow_all_windows", RENDER),
                        ("composite_paper", COMPOSITE), ("flowpairs_synth", FLOWPAIRS)):
        with writer(tmp_path / job, schema.name) as w:
            for sample in golden_samples(job)[:3]:
                w.add(sample)
            assert w.close()["samples"] == 3


@pytest.mark.parametrize("change, words", [
    (lambda s: s.pop("bbox"), "field 'bbox' is missing (required by schema blurgen.render/1)"),
    (lambda s: s.update(score=np.float32(1)), "field 'score' is not in schema blurgen.render/1 (fields: "
                                              + ", ".join(RENDER.names) + ")"),
    (lambda s: s.update(alpha=s["alpha"].astype(np.float64)),
     "field 'alpha' has dtype float64, schema blurgen.render/1 declares float32 (H, W)"),
    (lambda s: s.update(blur_level=int(s["blur_level"])),  # a Python int is stored as int64
     "field 'blur_level' has dtype int64, schema blurgen.render/1 declares int8 scalar"),
    (lambda s: s.update(bbox=np.zeros(5, np.int32)),
     "field 'bbox' has shape (5,), schema blurgen.render/1 declares int32 (4,)"),
    (lambda s: s.update(image=s["image"][..., 0]),
     "field 'image' has shape (48, 64), schema blurgen.render/1 declares uint8 (H, W, 3)"),
    (lambda s: s.update(category=np.int64(3)),
     "field 'category' is an array of int64, not a str, schema blurgen.render/1 declares str"),
    (lambda s: s.update(trajectory_id="7"),
     "field 'trajectory_id' is a str, not an array, schema blurgen.render/1 declares int64 scalar"),
])
def test_a_first_sample_that_disagrees_is_refused_and_leaves_no_file(tmp_path, change, words):
    sample = golden_samples("render_demo")[0]
    change(sample)
    with pytest.raises(ShardError) as err:
        with writer(tmp_path) as w:
            w.add(sample)
    assert str(err.value) == f"test-00000-of-00001.h5 sample 0: {words}"
    assert leftovers(tmp_path) == []  # no shard, no temporary file, no manifest


def test_image_size_is_bound_by_the_first_sample_of_a_shard(tmp_path):
    first, second = golden_samples("render_demo")[:2]
    second["image"] = np.zeros((40, 64, 3), np.uint8)  # fits (H, W, 3) alone, not with the first
    with writer(tmp_path) as w:
        w.add(first)
        with pytest.raises(ShardError, match=r"sample 1: field 'image' has shape \(40, 64, 3\) but H is 48 "
                                             r"in this shard, schema blurgen.render/1"):
            w.add(second)
        w.add(golden_samples("render_demo")[1])  # the refused sample bound nothing and wrote nothing
        assert w.close()["samples"] == 2
    # a shard of its own may have another size: H and W vary with the config
    small = {k: (v[:40] if k in ("image", "alpha") else v) for k, v in first.items()}
    with writer(tmp_path / "small") as w:
        w.add(small)
        w.close()
    with h5py.File(tmp_path / "small" / "test-00000-of-00001.h5") as f:
        assert f["image"].shape == (1, 40, 64, 3) and f["alpha"].shape == (1, 40, 64)


def test_optional_fields_are_in_every_sample_of_a_shard_or_in_none(tmp_path):
    with_flow = golden_samples("render_flow_all_windows")[:2]
    without = dict(with_flow[1])
    del without["flow_fwd"], without["flow_bwd"], without["flow_valid"]
    with writer(tmp_path) as w:
        w.add(with_flow[0])
        with pytest.raises(ShardError, match=r"key 'flow_\w+' is missing .*blurgen.render/1"):
            w.add(without)
        w.abort()
    with writer(tmp_path) as w:
        w.add({k: v for k, v in with_flow[0].items() if not k.startswith("flow_")})
        with pytest.raises(ShardError, match=r"key 'flow_\w+' was not in the first sample .*blurgen.render/1"):
            w.add(with_flow[1])
        w.abort()
    assert leftovers(tmp_path) == []


def test_an_undeclared_schema_is_refused_in_one_line_before_anything_is_made(tmp_path):
    with pytest.raises(ShardError) as err:
        writer(tmp_path / "out", "blurgen.nosuch/1")
    message = str(err.value)
    assert "\n" not in message and "unknown shard schema 'blurgen.nosuch/1'" in message
    assert "blurgen.render/1" in message  # names what is declared
    assert not (tmp_path / "out").exists()


def test_a_registered_schema_is_checked_like_the_generators(tmp_path):
    schema = register_schema(Schema("blurgen.schematest/1", "two fields", (
        Field("mask", "bool", ("H", "W"), "true: kept", "a mask"),
        Field("note", "str", (), "free text", "a note", optional=True))))
    assert register_schema(schema) is schema  # the same declaration again is harmless
    with pytest.raises(ValueError, match="already declared differently"):
        register_schema(Schema("blurgen.schematest/1", "changed", schema.fields[:1]))
    with writer(tmp_path, "blurgen.schematest/1") as w:
        w.add({"mask": np.ones((3, 5), bool)})
        with pytest.raises(ShardError, match="field 'mask' has dtype uint8, schema blurgen.schematest/1"):
            w.add({"mask": np.ones((3, 5), np.uint8)})
        w.close()
    assert folder_schema(tmp_path) == Schema("blurgen.schematest/1", "two fields", schema.fields[:1])


def test_declarations_with_a_typo_fail_when_declared():
    with pytest.raises(TypeError):
        Field("x", "unit8", (), "", "")
    with pytest.raises(ValueError, match="symbolic dimension 'D'"):
        Field("x", "uint8", ("D",), "", "")


# ----------------------------------------------------------------- readers ask a folder

def test_folder_schema_says_which_fields_a_folder_has():
    render = folder_schema(GOLDEN / "render_demo")
    assert render.name == "blurgen.render/1"
    assert render.has("blur_severity") and render.has("alpha") and not render.has("flow_fwd")
    assert folder_schema(GOLDEN / "render_flow_all_windows").has("flow_fwd")
    composite = folder_schema(GOLDEN / "composite_demo")
    assert composite.has("blur_mask") and not composite.has("blur_severity")
    assert composite.field("image").shape == ("H", "W", 3)
    # the flowpairs video job's val shard is empty: the schema still comes from its train shard
    assert folder_schema(GOLDEN / "flowpairs_video").has("flow_valid")


def test_a_folder_mixing_schemas_is_an_error_naming_them(tmp_path):
    shutil.copy(GOLDEN / "render_demo" / "test-00000-of-00001.h5", tmp_path)
    shutil.copy(GOLDEN / "composite_demo" / "train-00000-of-00002.h5", tmp_path)
    with pytest.raises(ShardError, match=r"mixes shard schemas \(blurgen.composite/1, blurgen.render/1\)"):
        folder_schema(tmp_path)


def test_a_folder_of_an_undeclared_schema_is_an_error(tmp_path):
    path = tmp_path / "test-00000-of-00001.h5"
    shutil.copy(GOLDEN / "render_demo" / path.name, path)
    with h5py.File(path, "r+") as f:
        f.attrs["schema"] = "blurgen.future/9"
    with pytest.raises(ShardError, match="unknown shard schema 'blurgen.future/9'"):
        folder_schema(tmp_path)


# ----------------------------------------------------------------- docs follow the declarations

def test_the_docs_tables_are_the_declarations():
    text = DOCS.read_text(encoding="utf-8")
    assert update_docs(text, required=GENERATOR_SCHEMAS) == text, \
        "docs/shard-format.md is stale: run blurgen shards schema --update-docs docs/shard-format.md"
    for schema in GENERATOR_SCHEMAS:
        assert schema_table(schema) in text


def test_the_table_of_a_schema_has_one_row_per_field():
    lines = schema_table(RENDER).splitlines()
    assert len(lines) == 2 + len(RENDER.fields)
    assert lines[2] == "| `image` | uint8 | (H, W, 3) | RGB (not BGR) sRGB, 0..255 | premultiplied render " \
                       "composited over the background in linear light |"
    assert lines[-1].startswith("| `flow_valid` (optional) | bool | (H, W, 2) |")


def test_update_docs_regenerates_a_stale_table_and_refuses_a_missing_one(tmp_path):
    stale = DOCS.read_text(encoding="utf-8").replace("| `blur_level` | int8 |", "| `blur_level` | int64 |")
    assert update_docs(stale, GENERATOR_SCHEMAS) == DOCS.read_text(encoding="utf-8")
    with pytest.raises(ShardError, match="no generated table for schema blurgen.render/1"):
        update_docs("# no tables", [RENDER])


def test_schema_command_prints_checks_and_updates_the_docs(tmp_path):
    runner = CliRunner()
    result = runner.invoke(main, ["shards", "schema", "blurgen.composite/1"])
    assert result.exit_code == 0 and result.output.strip() == schema_table(COMPOSITE)
    listing = runner.invoke(main, ["shards", "schema"]).output
    assert all(s.name in listing for s in GENERATOR_SCHEMAS)
    docs = tmp_path / "shard-format.md"
    text = DOCS.read_text(encoding="utf-8")
    docs.write_text(text.replace("| `fps` | float32 |", "| `fps` | float64 |"), encoding="utf-8")
    stale = docs.read_text(encoding="utf-8")
    result = runner.invoke(main, ["shards", "schema", "--update-docs", str(docs), "--check"])
    assert result.exit_code == 1 and "differ" in result.output
    assert docs.read_text(encoding="utf-8") == stale  # --check changes nothing
    result = runner.invoke(main, ["shards", "schema", "--update-docs", str(docs)])
    assert result.exit_code == 0 and docs.read_text(encoding="utf-8") == text
    result = runner.invoke(main, ["shards", "schema", "blurgen.nosuch/1"])
    assert result.exit_code == 2 and "unknown shard schema" in result.output

