"""`blurgen evaluate retrieval` (paper §5) and the shared report helpers.

The report's numbers are checked against a brute-force oracle written here from the saved
descriptors: each positive's rank counted one comparison at a time, AP as the mean over positives
of (positives ranked at or above it) / rank, in float64 NumPy, never the metrics module's
cumulative-sum formula. Fast tests use the golden render shards and hand-made inputs; the slow ones
render a tiny retrieval set and its distractors with Blender. The golden render is trivially
separable (every AP is 1), so it checks the plumbing, the picture and the refusals; the numbers
are tested on the Blender render, where APs spread.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from blurgen.config import resolve_config, to_json
from blurgen.errors import BlurgenError
from blurgen.shards import ShardDataset
from blurgen.train.checkpoint import save_checkpoint
from blurgen.train.data import device_images
from blurgen.train.report import jsonable, markdown_table, percent, staged_folder, write_h5_groups, write_json
from blurgen.train.retrieval import RetrievalConfig, RetrievalModule
from blurgen.train.retrieval_eval import evaluate_retrieval
from blurgen.viz.retrieval_sheet import QueryRow, Result, retrieval_sheet
from blurgen.viz.sheet import BACKGROUND, GREEN, RED, WHITE

GOLDEN = Path(__file__).parent / "golden"
RENDER_GOLDEN = GOLDEN / "render_demo"        # 64x48 render shards: a test split with both roles
COMPOSITE_GOLDEN = GOLDEN / "composite_demo"  # composite shards


# ---------------------------------------------------------------------------------------- oracle

def oracle_ap(sims: np.ndarray, relevant: np.ndarray, k: int | None = None) -> float:
    """AP of one query by counting: rank of item j = 1 + #(better) + #(equal and earlier)."""
    n = len(sims)
    ranks = [1 + sum(1 for i in range(n) if sims[i] > sims[j] or (sims[i] == sims[j] and i < j))
             for j in np.flatnonzero(relevant)]
    if not ranks:
        return float("nan")
    terms = [sum(1 for p in ranks if p <= r) / r for r in ranks if k is None or r <= k]
    return sum(terms) / (len(ranks) if k is None else min(len(ranks), k))


def oracle_maps(q: np.ndarray, d: np.ndarray, q_obj: np.ndarray, d_obj: np.ndarray, k: int | None = None
                ) -> np.ndarray:
    sims = q.astype(np.float64) @ d.astype(np.float64).T
    return np.array([oracle_ap(sims[i], d_obj == q_obj[i], k) for i in range(len(q))])


def level_means(ap: np.ndarray, levels: np.ndarray) -> dict[str, float | None]:
    out = {}
    for level in sorted(set(levels.tolist())):
        chosen = [a for a, lv in zip(ap, levels) if lv == level and not np.isnan(a)]
        out[str(level)] = sum(chosen) / len(chosen) if chosen else None
    return out


def read_side(path: Path, side: str) -> dict[str, np.ndarray]:
    with h5py.File(path) as f:
        g = f[side]
        return {name: (g[name].asstr()[...] if h5py.check_string_dtype(g[name].dtype) else g[name][...])
                for name in g}


def approx(a, b) -> bool:
    """Equal as report numbers: None (NaN) only with None, numbers to 1e-9."""
    if a is None or b is None:
        return a is None and b is None
    return abs(a - b) < 1e-9


# ------------------------------------------------------------------------------------ checkpoint

def make_checkpoint(path: Path, image_folders: list[Path], task: str = "retrieval") -> Path:
    """An untrained demo-preset model whose descriptor is its centred whitened GeM features.

    A random ResNet maps every image to nearly the same vector (similarities 0.999, gaps of
    1e-8, where float32 and float64 rankings disagree); centring the pooled features on the
    images' mean spreads the descriptors so that the float64 oracle and the float32 search rank
    alike. No training: only the whitening and reduction layers are set.
    """
    cfg = resolve_config(RetrievalConfig, "train-retrieval", preset="demo", overrides=["data.input_size=[64, 48]"])
    torch.manual_seed(0)
    module = RetrievalModule(cfg, num_classes=4).eval()
    bridge = module.bridge
    files = [str(p) for folder in image_folders for p in sorted(folder.glob("*.h5"))]
    images = torch.from_numpy(np.asarray(ShardDataset(files, fields=()).column("image")))
    with torch.no_grad():
        x, _ = device_images(images)
        pooled = F.normalize(bridge.pool(bridge.backbone(x)), dim=1)
        channels = pooled.shape[1]
        bridge.whiten.weight.copy_(torch.eye(channels))
        bridge.whiten.bias.copy_(-pooled.mean(0))
        bridge.reduce.weight[:, channels:] = 0.0
        bridge.reduce.bias.zero_()
    return save_checkpoint(path, {"task": task, "config": to_json(cfg), "epoch": 0, "global_step": 0,
                                  "model": module.state_dict()})


def check_against_oracle(report_dir: Path, k: int, table_k: int | None = None) -> dict:
    """Every number of report.json recomputed from descriptors.h5 by the oracle; returns the report.
    ``table_k``: the cut-off of the per-database-level table (None: mAP@all)."""
    report = json.loads((report_dir / "report.json").read_text())
    q, d = read_side(report_dir / "descriptors.h5", "query"), read_side(report_dir / "descriptors.h5", "database")
    sims = q["descriptor"].astype(np.float64) @ d["descriptor"].astype(np.float64).T
    # precondition of an exact comparison: no two database items within float32 noise of each other
    assert min(np.diff(np.sort(row)).min() for row in sims) > 1e-6
    ap_all = oracle_maps(q["descriptor"], d["descriptor"], q["object_id"], d["object_id"])
    ap_k = oracle_maps(q["descriptor"], d["descriptor"], q["object_id"], d["object_id"], k)
    np.testing.assert_allclose(q["ap_all"], ap_all, atol=1e-12)
    np.testing.assert_allclose(q["ap_at_k"], ap_k, atol=1e-12)
    for name, ap in (("map_all", ap_all), ("map_at_k", ap_k)):
        summary = report[name]
        assert approx(summary["map"], float(np.nanmean(ap)))
        assert summary["num_queries"] == int((~np.isnan(ap)).sum())
        assert summary["num_without_positives"] == int(np.isnan(ap).sum())
        expected = level_means(ap, q["blur_level"])
        assert summary["per_level"].keys() == expected.keys()
        assert all(approx(summary["per_level"][lv], expected[lv]) for lv in expected)
    table = report["per_database_level"]
    assert (table["metric"], table["k"]) == ("map_all" if table_k is None else f"map_at_{table_k}", table_k)
    assert table["database_levels"] == sorted(set(d["blur_level"].tolist()))
    assert table["query_levels"] == sorted(set(q["blur_level"].tolist()))
    cells = []
    for r, level in enumerate(table["database_levels"]):
        keep = d["blur_level"] == level
        ap = oracle_maps(q["descriptor"], d["descriptor"][keep], q["object_id"], d["object_id"][keep], table_k)
        row = level_means(ap, q["blur_level"])
        assert all(approx(table["cells"][r][c], row[str(lv)]) for c, lv in enumerate(table["query_levels"]))
        assert approx(table["all_queries"][r], float(np.nanmean(ap)) if (~np.isnan(ap)).any() else None)
        cells += [v for v in row.values() if v is not None]
    assert approx(table["range"], max(cells) - min(cells))
    mean = sum(cells) / len(cells)
    assert approx(table["std"], (sum((c - mean) ** 2 for c in cells) / len(cells)) ** 0.5)
    return report


def check_picture(report_dir: Path, report: dict) -> None:
    """One row per query level with a positive, 6 tiles of 128x96 (64x48 images), frames matching
    the oracle's top 5 (green: the query's object, red: another)."""
    q, d = read_side(report_dir / "descriptors.h5", "query"), read_side(report_dir / "descriptors.h5", "database")
    picture = cv2.cvtColor(cv2.imread(str(report_dir / "retrievals.png")), cv2.COLOR_BGR2RGB)
    has_positive = np.array([(d["object_id"] == o).any() for o in q["object_id"]])
    levels = sorted(set(q["blur_level"][has_positive].tolist()))
    assert picture.shape == (len(levels) * (96 + 4) + 4, 6 * (128 + 4) + 4, 3)
    sims = q["descriptor"].astype(np.float64) @ d["descriptor"].astype(np.float64).T
    for row, level in enumerate(levels):
        query = next(i for i in range(len(q)) if q["blur_level"][i] == level and has_positive[i])
        entry = report["retrievals"][row]
        assert entry["query"] == q["sample_id"][query] and entry["blur_level"] == level
        top = np.argsort(-sims[query], kind="stable")[:5]
        assert [r["sample_id"] for r in entry["results"]] == d["sample_id"][top].tolist()
        y = 4 + row * 100 + 94  # bottom edge of the frame, below the label band
        assert tuple(picture[y, 4 + 64]) == WHITE
        for col, j in enumerate(top, start=1):
            expected = GREEN if d["object_id"][j] == q["object_id"][query] else RED
            assert tuple(picture[y, 4 + col * 132 + 64]) == expected


def assert_refused(match: str, checkpoint: Path, data: Path, out: Path, **kw) -> None:
    """evaluate_retrieval refuses with one line matching ``match`` and writes nothing at ``out``."""
    existed = out.exists()
    with pytest.raises(BlurgenError, match=match) as err:
        evaluate_retrieval(checkpoint, data, out, device="cpu", progress=False, **kw)
    assert "\n" not in str(err.value)
    assert out.exists() == existed


# ------------------------------------------------------------------------------ fast: the helpers

def test_staged_folder_appears_whole_and_refuses_an_existing_report(tmp_path):
    out = tmp_path / "report"
    with staged_folder(out) as staging:
        (staging / "a.txt").write_text("x")
        assert not out.exists()  # nothing visible at OUT while it is built
    assert (out / "a.txt").read_text() == "x"
    assert [p.name for p in tmp_path.iterdir()] == ["report"]  # the staging folder is gone
    with pytest.raises(BlurgenError, match="already exists and is not empty") as err:
        with staged_folder(out):
            pass
    assert "\n" not in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with staged_folder(empty) as staging:
        (staging / "b.txt").write_text("y")
    assert (empty / "b.txt").read_text() == "y"


def test_staged_folder_leaves_nothing_when_building_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with staged_folder(tmp_path / "report") as staging:
            (staging / "half.json").write_text("{")
            raise RuntimeError("crash while writing")
    assert list(tmp_path.iterdir()) == []


def test_json_values_are_plain_and_nan_is_null(tmp_path):
    value = {"a": np.float32(0.5), "b": float("nan"), 3: np.arange(3, dtype=np.int8), "p": Path("x/y"),
             "nested": [np.int64(7), (np.float64("inf"), 1.25)]}
    assert jsonable(value) == {"a": 0.5, "b": None, "3": [0, 1, 2], "p": "x/y", "nested": [7, [None, 1.25]]}
    path = write_json(tmp_path / "r.json", value)
    text = path.read_text()
    assert json.loads(text, parse_constant=lambda c: pytest.fail(f"non-standard JSON {c}")) == jsonable(value)
    assert text == write_json(tmp_path / "again.json", value).read_text()


def test_markdown_table_and_percent_by_hand():
    assert percent(0.123456) == "12.35"
    assert percent(1.0) == "100.00"
    assert percent(float("nan")) == "–" and percent(None) == "–"
    assert markdown_table(["", "L1", "all"], [["mAP@all", "50.00", "–"]]) == (
        "|  | L1 | all |\n| --- | ---: | ---: |\n| mAP@all | 50.00 | – |\n")
    with pytest.raises(ValueError):
        markdown_table(["a", "b"], [["only one"]])


def test_h5_groups_read_back_with_plain_h5py(tmp_path):
    descriptors = np.arange(6, dtype=np.float32).reshape(3, 2)
    path = write_h5_groups(tmp_path / "d.h5", {
        "query": {"descriptor": descriptors, "sample_id": np.array(["a", "bé", "c"]),
                  "blur_level": np.array([1, 2, 10], np.int8)},
        "database": {"descriptor": descriptors[:0], "sample_id": np.array([], dtype=str)}},
        attrs={"k": 100, "note": "x", "more": {"a": 1}})
    with h5py.File(path) as f:
        np.testing.assert_array_equal(f["query/descriptor"][...], descriptors)
        assert f["query/sample_id"].asstr()[...].tolist() == ["a", "bé", "c"]
        assert f["query/blur_level"].dtype == np.int8 and f["query/blur_level"][...].tolist() == [1, 2, 10]
        assert f["database/descriptor"].shape == (0, 2)
        assert f.attrs["k"] == 100 and f.attrs["note"] == "x" and json.loads(f.attrs["more"]) == {"a": 1}
    with pytest.raises(ValueError, match="different lengths"):
        write_h5_groups(tmp_path / "bad.h5", {"g": {"a": np.zeros(2), "b": np.zeros(3)}})


def test_retrieval_sheet_layout_and_frame_colours():
    image = np.full((48, 64, 3), 128, np.uint8)
    rows = [QueryRow(image, ("query", "L1"), [Result(image, positive=i % 2 == 0, lines=(f"#{i + 1}",))
                                              for i in range(5)]),
            QueryRow(image, ("query", "L4"), [Result(image, positive=False)])]
    sheet = retrieval_sheet(rows, top=5, tile_width=128)
    assert sheet.shape == (2 * (96 + 4) + 4, 6 * (128 + 4) + 4, 3)

    def frame(row: int, col: int) -> tuple:  # middle of the tile's bottom frame line
        return tuple(sheet[4 + row * 100 + 94, 4 + col * 132 + 64])

    assert frame(0, 0) == WHITE and frame(1, 0) == WHITE
    assert [frame(0, c) for c in range(1, 6)] == [GREEN, RED, GREEN, RED, GREEN]
    assert frame(1, 1) == RED
    assert all(tuple(sheet[4 + 100 + 48, 4 + c * 132 + 64]) == BACKGROUND for c in range(2, 6))  # no result
    assert tuple(sheet[4 + 48, 4 + 64]) == (128, 128, 128)  # the image itself, inside the frame


# --------------------------------------------------------------- fast: the golden render shards

@pytest.fixture(scope="module")
def golden_checkpoint(tmp_path_factory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("ckpt") / "model.pt", [RENDER_GOLDEN])


def test_golden_render_report_matches_the_oracle(golden_checkpoint, tmp_path):
    report = evaluate_retrieval(golden_checkpoint, RENDER_GOLDEN, tmp_path / "r", device="cpu", k=2,
                                progress=False)
    data = check_against_oracle(tmp_path / "r", k=2)  # no distractors: the table is mAP@all
    check_picture(tmp_path / "r", data)
    assert "## mAP@all with the database restricted to one blur level" in (tmp_path / "r" / "report.md").read_text()
    assert sorted(p.name for p in (tmp_path / "r").iterdir()) == [
        "descriptors.h5", "report.json", "report.md", "retrievals.png"]
    with h5py.File(RENDER_GOLDEN / "test-00000-of-00001.h5", "r", locking=False) as f:  # the oracle: plain h5py
        queries = int(np.count_nonzero(f["role"].asstr()[()] == "query"))
    assert queries > 0 and report.num_queries == data["counts"]["queries"] == queries and report.num_distractors == 0
    assert data["distractors"] is None and data["k"] == 2 and data["task"] == "retrieval"
    assert data["config"]["data"]["input_size"] == [64, 48]
    assert f"{100 * report.map_all.map:.2f}" in (tmp_path / "r" / "report.md").read_text()
    assert "report: " in report.describe()


def test_refusals_are_one_line(golden_checkpoint, tmp_path):
    def refused(match: str, checkpoint=golden_checkpoint, out=None, **kw) -> None:
        assert_refused(match, checkpoint, kw.pop("data", RENDER_GOLDEN), out or tmp_path / "never", **kw)

    refused("blurgen.render/1 shards", data=COMPOSITE_GOLDEN)
    existing = tmp_path / "existing"
    existing.mkdir()
    (existing / "report.json").write_text("{}")
    refused("already exists and is not empty", out=existing)
    assert (existing / "report.json").read_text() == "{}"
    other = make_checkpoint(tmp_path / "other.pt", [RENDER_GOLDEN], task="blurseg")
    refused("checkpoint of the 'blurseg' task", checkpoint=other)
    refused("no checkpoint at", checkpoint=tmp_path / "missing.pt")
    refused("needs the distractor images", distractors=RENDER_GOLDEN)  # no distractor split there
    refused("k must be at least 1", k=0)


# ------------------------------------------------------------ slow: a Blender render + distractors

@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, Path]:
    """3 categories: 4 objects each for the retrieval set (2 trajectories each), the next object of
    each as distractors (1 trajectory each), and an untrained checkpoint."""
    from blurgen.assets.config import DemoAssetsConfig
    from blurgen.assets.demo import make_demo_assets
    from blurgen.render.config import RenderConfig
    from blurgen.render.pipeline import render_dataset

    root = tmp_path_factory.mktemp("eval_render")
    demo = make_demo_assets(root / "assets", DemoAssetsConfig(
        categories=3, objects_per_category=5, texture_size=64, backgrounds=5, background_width=160,
        background_height=120, preview=False))
    common = [f"assets.objects={demo.objects}", f"assets.backgrounds={demo.backgrounds}", "camera.width=64",
              "camera.height=48", "cycles.samples=2", "images.max_window=4",
              "output.preview=false"]
    jobs = {"data": ["assets.objects_per_category=4", "trajectory.per_object=2"],
            "distractors": ["mode=distractor", "assets.skip_objects=4", "assets.objects_per_category=1",
                            "trajectory.per_object=1"]}
    out = {}
    for name, sets in jobs.items():
        out[name] = root / name
        render_dataset(resolve_config(RenderConfig, "render", preset="demo", overrides=common + sets), out[name],
                       progress=False)
    out["checkpoint"] = make_checkpoint(root / "model.pt", [out["data"], out["distractors"]])
    return out


@pytest.mark.slow
def test_report_with_distractors_matches_the_oracle_and_reruns_identically(rendered, tmp_path):
    first = evaluate_retrieval(rendered["checkpoint"], rendered["data"], tmp_path / "a",
                               distractors=rendered["distractors"], device="cpu", k=3, progress=False)
    # with distractors the paper reports mAP@100 throughout, per database level too (§5, supp. Fig. 7)
    report = check_against_oracle(tmp_path / "a", k=3, table_k=3)
    check_picture(tmp_path / "a", report)
    assert first.map_all.map != first.map_at_k.map  # k = 3 < the positives of a query: mAP@3 differs
    assert "## mAP@3 with the database restricted to one blur level" in (tmp_path / "a" / "report.md").read_text()

    # every query and database image is saved, once, with its labels
    test = ShardDataset(sorted(str(p) for p in rendered["data"].glob("test-*.h5")), fields=())
    distractors = ShardDataset(sorted(str(p) for p in rendered["distractors"].glob("*.h5")), fields=())
    roles, ids = np.asarray(test.column("role")), np.asarray(test.column("sample_id"))
    q, d = read_side(tmp_path / "a" / "descriptors.h5", "query"), read_side(tmp_path / "a" / "descriptors.h5",
                                                                            "database")
    assert sorted(q["sample_id"]) == sorted(ids[roles == "query"])
    assert sorted(d["sample_id"]) == sorted([*ids[roles == "database"], *distractors.column("sample_id")])
    assert (d["split"] == "distractor").sum() == len(distractors) == report["counts"]["distractors"] > 0
    assert set(q["role"]) == {"query"}
    np.testing.assert_allclose(np.linalg.norm(q["descriptor"], axis=1), 1.0, atol=1e-5)

    evaluate_retrieval(rendered["checkpoint"], rendered["data"], tmp_path / "b", distractors=rendered["distractors"],
                       device="cpu", k=3, progress=False)
    assert (tmp_path / "a" / "report.json").read_bytes() == (tmp_path / "b" / "report.json").read_bytes()
    assert (tmp_path / "a" / "report.md").read_bytes() == (tmp_path / "b" / "report.md").read_bytes()


@pytest.mark.slow
def test_folders_without_roles_or_with_shared_objects_are_one_line(rendered, tmp_path):
    def refused(match: str, data: Path, distractors: Path | None = None) -> None:
        assert_refused(match, rendered["checkpoint"], data, tmp_path / "never", distractors=distractors)

    refused("needs its query and database images \\('test' shards\\).*splits there: distractor",
            rendered["distractors"])
    # a test split whose images have no query/database role (render shards of distractor objects,
    # role "", named as a test split): one line, not an evaluation over nothing
    no_roles = tmp_path / "no_roles"
    no_roles.mkdir()
    for path in rendered["distractors"].glob("distractor-*.h5"):
        shutil.copy(path, no_roles / path.name.replace("distractor-", "test-"))
    refused("the test split has 0 query and 0 database images", no_roles)
    # the retrieval set's own test objects given as distractors: they would count as positives
    shared = tmp_path / "shared"
    shared.mkdir()
    for path in rendered["data"].glob("test-*.h5"):
        shutil.copy(path, shared / path.name.replace("test-", "distractor-"))
    refused("shares [1-9][0-9]* object\\(s\\) with the test split", rendered["data"], shared)
