"""``blurgen shards publish``: the release's files, checked against independent readers (h5py,
``sha256sum -c``, ``mlcroissant validate``, PyYAML) and counts known by construction."""

from __future__ import annotations

import ast
import glob
import hashlib
import json
import shutil
import os
import subprocess
from collections import Counter
from pathlib import Path

import cv2
import h5py
import pytest
import release_fixtures as rf
import shard_fixtures as fx
import table1_fixtures as t1
import yaml
from click.testing import CliRunner

from blurgen.cli.main import main
from blurgen.shards import ShardDataset, verify_dir
from blurgen.shards.card import size_category
from blurgen.shards.generators import generator_info
from blurgen.shards.manifest import sha256_file
from blurgen.shards.publish import publish
from blurgen.shards.publish_config import PublishConfig

CONFIG = PublishConfig(license="CC-BY-4.0", creator="Test Maintainer", url="https://example.org/blur",
                       tags=("test",))


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    return rf.make_release_inputs(tmp_path_factory.mktemp("inputs"))


@pytest.fixture(scope="module")
def release(inputs, tmp_path_factory):
    out = tmp_path_factory.mktemp("release") / "rel"
    publish({"retrieval": inputs[0], "distractors": inputs[1]}, out, CONFIG, progress=False)
    return out


def card_parts(release: Path) -> tuple[dict, str]:
    text = (release / "README.md").read_text("utf-8")
    assert text.startswith("---\n")
    front, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(front), body


def file_split(path: str) -> str:
    with h5py.File(path, "r") as f:
        return f.attrs["split"]


def test_front_matter_follows_the_hub_convention_and_lists_each_splits_files(release):
    front, _ = card_parts(release)
    assert front["license"] == "cc-by-4.0"
    assert front["pretty_name"] == "retrieval+distractors"
    assert front["size_categories"] == ["n<1K"]  # 57 images
    assert "image-feature-extraction" in front["task_categories"] and "test" in front["tags"]
    (config,) = front["configs"]
    assert config["config_name"] == "default"
    by_split = {d["split"]: d["path"] for d in config["data_files"]}
    assert list(by_split) == ["train", "val", "test", "distractor"]
    shards = sorted(glob.glob(str(release / "data" / "*.h5")))
    for split, pattern in by_split.items():
        matched = sorted(glob.glob(str(release / pattern)))
        # the pattern selects exactly the shards whose attributes say they are of this split
        assert matched and matched == [p for p in shards if file_split(p) == split]


def test_card_tables_equal_the_shards_counts_read_with_h5py(release):
    _, body = card_parts(release)
    tables = rf.markdown_tables(body)
    cols = rf.read_columns(release / "data", ["split", "role", "blur_level"])
    by_split = rf.level_counts(cols["split"], cols["blur_level"])
    rows = ["distractor" if s == "distractor" else r for s, r in zip(cols["split"], cols["role"])]
    by_role = rf.level_counts(rows, cols["blur_level"])
    by_role.pop("", None)  # train and val images have no role
    # the fixture's images are all blurred (window_count = level), so its sharp column is 0
    for title, expected, sharp in (("Images per blur level and split", by_split, []),
                                   ("Blurred images per blur level and role (the paper's Table 1 rows)", by_role,
                                    [0])):
        header, *body_rows = tables[title]
        # the paper's Table 1 layout
        assert header[1:] == ["total"] + [f"BL {lv}" for lv in range(1, 11)] + ["sharp"] * len(sharp)
        seen = {}
        for row in body_rows:
            seen[row[0]] = [int(c) for c in row[1:]]
        for name, counter in expected.items():
            assert seen[name] == [sum(counter.values())] + [counter.get(lv, 0) for lv in range(1, 11)] + sharp, name
        assert seen["total"][0] == sum(sum(c.values()) for c in expected.values())
    assert set(by_role) == {"query", "database", "distractor"}


def test_card_table1_rows_count_blurred_images_and_the_sharp_ones_apart(tmp_path):
    publish([t1.write_job(tmp_path / "job")], tmp_path / "rel", CONFIG, progress=False)
    tables = rf.markdown_tables(card_parts(tmp_path / "rel")[1])
    header, *rows = tables["Blurred images per blur level and role (the paper's Table 1 rows)"]
    assert header == ["role", "total", *(f"BL {lv}" for lv in range(1, 11)), "sharp"]
    seen = {row[0]: [int(c) for c in row[1:]] for row in rows}
    for role, levels in t1.BLURRED.items():  # counted by hand
        assert seen[role] == [sum(levels.values()), *(levels.get(lv, 0) for lv in range(1, 11)), t1.SHARP[role]]
    assert seen["total"] == [8, *(t1.BLURRED_TOTAL_BY_LEVEL.get(lv, 0) for lv in range(1, 11)), 4]
    header, *rows = tables["Images per blur level and split"]  # every image, the sharp ones too
    assert {row[0]: int(row[1]) for row in rows} == {"train": 2, "test": 9, "distractor": 3, "total": 14}


def test_card_counts_each_tasks_drops_once_and_records_the_asset_licences(release, inputs):
    _, body = card_parts(release)
    drops = rf.markdown_tables(body)["What the filters dropped"]
    got = {(r[0], r[2]): int(r[3]) for r in drops[1:]}
    # task 0 of the retrieval set wrote two shards holding the same stats: counted once
    assert got == {("retrieval", "small"): 5, ("retrieval", "appearance_change"): 1, ("distractors", "small"): 4}
    assert all("labels.min_" in r[4] for r in drops[1:])  # why: the filter's rule
    manifest = Path(inputs[0]).parent / "assets" / "objects.json"
    assets = rf.markdown_tables(body)["Set `retrieval`"]
    objects = next(r for r in assets if r[0] == "objects")
    assert objects[2] == f"`{hashlib.sha256(manifest.read_bytes()).hexdigest()}`"
    assert objects[3] == "6" and objects[4] == "5 used"  # o0..o4 used, 'unused' not
    assert objects[5] == "CC-BY-4.0 (1); CC0-1.0 (4)" and objects[6] == "Jane Doe, objects collection"


def render_drop_reasons() -> set[str]:
    """Every reason render's image filters can return, read from their source: the string
    constants ``labels.filter_reason`` returns and the first element of ``samples.judge_image``'s
    ``(reason, None)`` returns."""
    import blurgen.render.labels as labels
    import blurgen.render.samples as samples

    found = set()
    for module, name in ((labels, "filter_reason"), (samples, "judge_image")):
        function = next(node for node in ast.walk(ast.parse(Path(module.__file__).read_text()))
                        if isinstance(node, ast.FunctionDef) and node.name == name)
        for node in ast.walk(function):
            if isinstance(node, ast.Return) and node.value is not None:
                value = node.value.elts[0] if isinstance(node.value, ast.Tuple) else node.value
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.add(value.value)
    return found


def test_every_drop_reason_render_can_record_has_a_why_in_the_card():
    emitted = render_drop_reasons()
    assert {"small", "appearance_change", "truncated", "no_support", "above_max_level"} <= emitted  # the scan works
    assert set(generator_info("blurgen.render/1").reasons) >= emitted


def test_card_says_why_truncated_and_capped_images_were_dropped(tmp_path):
    dropped = {"truncated": 2, "above_max_level": 1, "no_support": 1}
    publish([t1.write_job(tmp_path / "job", dropped=dropped)], tmp_path / "rel", CONFIG, progress=False)
    rows = rf.markdown_tables(card_parts(tmp_path / "rel")[1])["What the filters dropped"][1:]
    why = {row[2]: row[4] for row in rows}
    assert {row[2]: int(row[3]) for row in rows} == dropped
    assert "labels.drop_truncated" in why["truncated"] and "labels.max_level" in why["above_max_level"]
    assert "Eq. 5" in why["no_support"]


def known_limits(release: Path) -> str:
    body = card_parts(release)[1]
    return body.split("## Known limits", 1)[1].split("\n## ", 1)[0]


def test_card_states_the_limits_of_the_coverage_the_labels_came_from(tmp_path):
    publish([t1.write_job(tmp_path / "exact", coverage="exact")], tmp_path / "e", CONFIG, progress=False)
    exact = known_limits(tmp_path / "e")
    assert "every triangle taken as opaque" in exact and "see-through" in exact
    assert "Coverage below 1/256 counts as none" in exact
    assert "Cycles sample counts" not in exact and "samples per pixel" not in exact
    publish([t1.write_job(tmp_path / "render", coverage="render")], tmp_path / "r", CONFIG, progress=False)
    render = known_limits(tmp_path / "r")
    assert "reads slightly low at low Cycles sample counts" in render
    assert "rendered with 8 samples per pixel" in render and "1/256" not in render


def test_croissant_validates_and_its_checksums_are_the_files(release):
    result = subprocess.run(["mlcroissant", "validate", "--jsonld", str(release / "croissant.json")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    doc = json.loads((release / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert doc["license"] == "https://spdx.org/licenses/CC-BY-4.0.html"
    files = {o["contentUrl"]: o for o in doc["distribution"]}
    shards = sorted(p.relative_to(release).as_posix() for p in (release / "data").glob("*.h5"))
    assert sorted(u for u in files if u.endswith(".h5")) == shards
    for url, obj in files.items():
        assert obj["sha256"] == hashlib.sha256((release / url).read_bytes()).hexdigest(), url
        assert obj["encodingFormat"] == ("application/x-hdf5" if url.endswith(".h5") else "application/json")


def test_sha256sum_checks_every_file(release):
    result = subprocess.run(["sha256sum", "-c", "SHA256SUMS"], cwd=release, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    listed = sorted(line.split(": ")[0] for line in result.stdout.splitlines())
    on_disk = sorted(p.relative_to(release).as_posix() for p in release.rglob("*")
                     if p.is_file() and p.name != "SHA256SUMS")
    assert listed == on_disk


def test_previews_one_per_split_and_per_blur_level(release):
    cols = rf.read_columns(release / "data", ["split", "blur_level"])
    names = sorted(p.name for p in (release / "previews").glob("*.png"))
    expected = sorted({f"split-{s}.png" for s in cols["split"]} | {f"level-{lv}.png" for lv in cols["blur_level"]})
    assert names == expected
    for name in names:
        image = cv2.imread(str(release / "previews" / name))
        assert image is not None and image.shape[1] >= 200


def test_verify_and_the_dataset_read_the_release_root(release):
    report = verify_dir(release)
    assert report.ok and report.samples == 57
    dataset = ShardDataset(release)
    assert len(dataset) == 57
    ids = rf.read_columns(release / "data", ["sample_id"])["sample_id"]
    assert sorted(dataset.column("sample_id")) == sorted(ids)
    result = CliRunner().invoke(main, ["shards", "stats", str(release)])
    assert result.exit_code == 0 and "distractor" in result.stdout
    result = CliRunner().invoke(main, ["shards", "info", str(release)])
    assert result.exit_code == 0 and "samples:   57 (distractor 12, test 18, train 18, val 9)" in result.stdout


def test_a_flipped_byte_in_a_release_is_caught(inputs, tmp_path):
    out = tmp_path / "rel"
    publish([inputs[0]], out, PublishConfig(license="MIT", link=False), progress=False)
    shard = sorted((out / "data").glob("test-*.h5"))[0]
    fx.flip_byte(shard, fx.chunk_byte_offset(shard, "image", 2))
    result = CliRunner().invoke(main, ["shards", "verify", str(out)])
    assert result.exit_code == 1
    assert f"BAD {shard.name}: sha256 differs" in result.stdout
    assert subprocess.run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], cwd=out, capture_output=True).returncode == 1
    assert verify_dir(inputs[0]).ok  # a copy: the input is untouched


def test_same_inputs_give_byte_identical_releases_linked_or_copied(inputs, tmp_path):
    before = {p: sha256_file(p) for i in inputs for p in sorted(Path(i).glob("*"))}
    a, b = tmp_path / "a", tmp_path / "b"
    ra = publish({"retrieval": inputs[0], "distractors": inputs[1]}, a, CONFIG, progress=False)
    rb = publish({"retrieval": inputs[0], "distractors": inputs[1]}, b,
                 PublishConfig(**{**CONFIG.__dict__, "link": False}), progress=False)
    assert ra.linked == ra.shards == 4 and rb.linked == 0
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files_a == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel
    assert {p: sha256_file(p) for i in inputs for p in sorted(Path(i).glob("*"))} == before
    source = Path(inputs[0]) / "train-00000-of-00002.h5"
    assert os.stat(a / "data" / "train-retrieval-00000-of-00002.h5").st_ino == os.stat(source).st_ino  # linked
    assert os.stat(b / "data" / "train-retrieval-00000-of-00002.h5").st_ino != os.stat(source).st_ino  # copied


def test_an_interrupted_publish_leaves_no_release(inputs, tmp_path, monkeypatch):
    import blurgen.shards.publish as publish_module

    def fail(*args, **kwargs):
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C while the card was written

    monkeypatch.setattr(publish_module, "render_card", fail)
    with pytest.raises(KeyboardInterrupt):
        publish([inputs[0]], tmp_path / "rel", CONFIG, progress=False)
    assert sorted(os.listdir(tmp_path)) == []
    assert verify_dir(inputs[0]).ok


def test_composite_and_flowpairs_cards_count_what_h5py_counts(tmp_path):
    comp = rf.write_simple_job(tmp_path / "composite", "blurgen.composite/1", rf.composite_sample,
                               {"train": range(0, 14), "val": range(14, 20)})
    publish([comp], tmp_path / "c", CONFIG, progress=False)
    tables = rf.markdown_tables(card_parts(tmp_path / "c")[1])
    cols = rf.read_columns(tmp_path / "c" / "data", ["split", "blur_types", "mode", "instances"])
    header, *rows = tables["Samples per blur type"]
    for row in rows[:-1]:
        types = Counter(t for s, ts in zip(cols["split"], cols["blur_types"]) if s == row[0]
                        for t in (ts.split(",") if ts else ["none (sharp)"]))
        assert {h: int(c) for h, c in zip(header[1:-1], row[1:-1])} == {h: types.get(h, 0) for h in header[1:-1]}
        assert int(row[-1]) == cols["split"].count(row[0])
    header, *rows = tables["Samples per sampling mode"]
    assert {(r[0], h): int(c) for r in rows[:-1] for h, c in zip(header[1:-1], r[1:-1])} == \
        {(s, m): n for (s, m), n in Counter(zip(cols["split"], cols["mode"])).items()}
    header, *rows = tables["Instances per coverage"]
    coverage = Counter((s, inst["coverage"]) for s, text in zip(cols["split"], cols["instances"])
                       for inst in json.loads(text))
    assert {(r[0], h): int(c) for r in rows[:-1] for h, c in zip(header[1:-1], r[1:-1])} == coverage
    drops = rf.markdown_tables(card_parts(tmp_path / "c")[1])["What the filters dropped"]
    assert drops[1] == ["composite", "skipped photos", "unreadable", "1", "–"]  # one task, counted once
    assert not (tmp_path / "c" / "previews" / "level-1.png").exists()  # level sheets are for render data

    flow = rf.write_simple_job(tmp_path / "flowpairs", "blurgen.flowpairs/1", rf.flowpairs_sample,
                               {"train": range(0, 9), "val": range(9, 12), "test": range(12, 15)})
    publish([flow], tmp_path / "f", CONFIG, progress=False)
    header, *rows = rf.markdown_tables(card_parts(tmp_path / "f")[1])["Pairs per number of frames averaged"]
    cols = rf.read_columns(tmp_path / "f" / "data", ["split", "frames"])
    assert {(r[0], h): int(c) for r in rows if r[0] != "total" for h, c in zip(header[1:-1], r[1:-1]) if int(c)} == \
        {(s, str(n)): k for (s, n), k in Counter(zip(cols["split"], cols["frames"])).items()}


def _run(*args: str):
    return CliRunner().invoke(main, ["shards", "publish", *args])


def _one_line_error(result, *words: str) -> None:
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.stderr.splitlines() if x.strip()]
    assert line.startswith("blurgen: error: ")
    for word in words:
        assert word in line, line


def test_bad_inputs_are_one_line_errors_and_leave_nothing(inputs, tmp_path):
    out = tmp_path / "out"
    retrieval = str(inputs[0])
    comp = rf.write_simple_job(tmp_path / "composite", "blurgen.composite/1", rf.composite_sample,
                               {"train": range(4)})
    _one_line_error(_run(retrieval, str(comp), "--out", str(out), "--license", "MIT"), "different schemas")
    _one_line_error(_run(retrieval, "--out", str(out), "--license", "CC-BY-4.1"), "unknown licence id 'CC-BY-4.1'",
                    "did you mean 'CC-BY-4.0'")
    _one_line_error(_run(retrieval, "--out", str(out)), "needs a licence")
    _one_line_error(_run(retrieval, "--out", str(out), "--license", "MIT", "--date", "yesterday"), "ISO 8601")
    twin = Path(shutil.copytree(retrieval, tmp_path / "twin"))
    _one_line_error(_run(retrieval, str(twin), "--out", str(out), "--license", "MIT"), "is in both")
    _one_line_error(_run(f"a={retrieval}", f"b={retrieval}", "--out", str(out), "--license", "MIT"), "given twice")
    no_manifest = Path(shutil.copytree(retrieval, tmp_path / "nomanifest"))
    (no_manifest / "manifest.json").unlink()
    _one_line_error(_run(str(no_manifest), "--out", str(out), "--license", "MIT"), "has no manifest.json",
                    "blurgen shards index")
    damaged = Path(shutil.copytree(retrieval, tmp_path / "damaged"))
    shard = damaged / "test-00001-of-00002.h5"
    fx.flip_byte(shard, fx.chunk_byte_offset(shard, "image", 1))
    _one_line_error(_run(str(damaged), "--out", str(out), "--license", "MIT"), "fails verification",
                    "test-00001-of-00002.h5")
    fx.write_shard(tmp_path / "unlisted", range(3))
    extra = Path(shutil.copytree(retrieval, tmp_path / "extra"))
    shutil.copy(tmp_path / "unlisted" / "train-00000-of-00001.h5", extra / "extra-00000-of-00001.h5")
    _one_line_error(_run(str(extra), "--out", str(out), "--license", "MIT"), "not listed in manifest.json")
    small = rf.write_job(tmp_path / "small", rf.distractor_plan(), prefix="other", objects_manifest=None,
                         tasks={"distractor": 0}, num_tasks=1, dropped={}, size=(8, 8))
    _one_line_error(_run(retrieval, str(small), "--out", str(out), "--license", "MIT"), "field 'alpha'",
                    "image size")
    overlapping = rf.write_job(tmp_path / "overlap", [dict(r, obj="o3") for r in rf.distractor_plan()],
                               prefix="other", objects_manifest=None, tasks={"distractor": 0}, num_tasks=1,
                               dropped={})
    _one_line_error(_run(retrieval, str(overlapping), "--out", str(out), "--license", "MIT"), "object 'o3'")
    gathered = rf.write_job(tmp_path / "gathered", rf.distractor_plan(), prefix="g", objects_manifest=None,
                            tasks={"distractor": 0}, num_tasks=1, dropped={}, spp=16)
    rf.write_job(tmp_path / "other-job", [dict(r, split="extra", i=r["i"] + 100) for r in rf.distractor_plan()],
                 prefix="g", objects_manifest=None, tasks={"extra": 0}, num_tasks=1, dropped={}, spp=8)
    shutil.copy(tmp_path / "other-job" / "extra-00000-of-00001.h5", gathered)
    assert CliRunner().invoke(main, ["shards", "index", str(gathered)]).exit_code == 0
    _one_line_error(_run(str(gathered), "--out", str(out), "--license", "MIT"), "more than one job")
    assert not out.exists()
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    _one_line_error(_run(retrieval, "--out", str(out), "--license", "MIT"), "already exists and is not empty")
    assert os.listdir(out) == ["keep.txt"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no staging folder left


def test_the_command_takes_options_over_a_config_file(inputs, tmp_path):
    config = tmp_path / "publish.yaml"
    config.write_text("license: CC0-1.0\nname: From the file\nversion: 2.0.0\ntags: [demo]\n"
                      "date_published: '2026-12-01'\npreview: {count: 4}\n")
    out = tmp_path / "rel"
    result = _run(f"retrieval={inputs[0]}", "--out", str(out), "--config", str(config), "--name", "From the option")
    assert result.exit_code == 0, result.output
    assert "published 45 samples in 3 shards (3 hard-linked, 0 copied)" in result.stdout
    assert "note:" not in result.stdout
    front, body = card_parts(out)
    assert front["pretty_name"] == "From the option" and front["license"] == "cc0-1.0" and "demo" in front["tags"]
    assert "- version: 2.0.0" in body and "- published: 2026-12-01" in body
    assert json.loads((out / "croissant.json").read_text())["datePublished"] == "2026-12-01"


def test_an_asset_manifest_gone_since_rendering_is_said_in_the_card_and_on_the_console(tmp_path):
    job = rf.write_job(tmp_path / "farm", rf.distractor_plan(), prefix="p", objects_manifest=tmp_path / "gone.json",
                       tasks={"distractor": 0}, num_tasks=1, dropped={})
    result = _run(str(job), "--out", str(tmp_path / "rel"), "--license", "MIT")
    assert result.exit_code == 0, result.output
    assert f"note: set farm: the objects manifest {tmp_path / 'gone.json'} was not found" in result.stdout
    assets = rf.markdown_tables(card_parts(tmp_path / "rel")[1])["Set `farm`"]
    objects = next(r for r in assets if r[0] == "objects")
    assert objects[2] == "not found when publishing" and objects[4] == "2 used"  # d0, d1
    backgrounds = next(r for r in assets if r[0] == "backgrounds")  # none configured: the built-in demo set's
    assert backgrounds[1].startswith("blurgen_demo_backgrounds") and "built-in demo_backgrounds" in backgrounds[1]
    assert backgrounds[4] == "3 used (3 not in this manifest)"  # the fixture's bg0..bg2 are not demo ids


def test_size_categories_are_the_hubs_buckets():
    # the Hub's labels: the count lies strictly inside the named range
    assert [size_category(n) for n in (0, 999, 1000, 9_999, 10_000, 999_999, 1_000_000, 2_700_000)] == \
        ["n<1K", "n<1K", "1K<n<10K", "1K<n<10K", "10K<n<100K", "100K<n<1M", "1M<n<10M", "1M<n<10M"]
    assert size_category(5 * 10**12) == "n>1T"
