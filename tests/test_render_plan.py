"""Planning and the farm contract: deterministic items, splits, roles, tasks, task indices."""

from __future__ import annotations

import dataclasses

import pytest

from blurgen.assets import AssetManifest
from blurgen.assets.bounds import Bounds
from blurgen.config import resolve_config
from blurgen.errors import BlurgenError
from blurgen.render.config import RenderConfig
from blurgen.farm import task_index_from
from blurgen.render.plan import DISTRACTOR_ID_OFFSET, make_plan


UNIT_BOUNDS = Bounds((-0.5, -0.25, -0.1), (0.5, 0.25, 0.1)).to_metadata()


def manifest(per_category: dict[str, int], broken: int = 0, untextured: int = 0) -> AssetManifest:
    assets = {}
    for category, n in per_category.items():
        for i in range(n):
            meta = {"category_name": f"name{category}", "textured": True, "broken": None,
                    "bounds": UNIT_BOUNDS}
            assets[f"{category}_{i:04d}"] = {"category": category, "path": f"{category}/{i}/m.obj",
                                             "license": "test", "metadata": meta}
    for i in range(broken):
        assets[f"900_b{i}"] = {"category": "900", "path": "x.obj", "license": "t",
                               "metadata": {"broken": "empty OBJ (no faces)", "textured": True}}
    for i in range(untextured):
        assets[f"901_u{i}"] = {"category": "901", "path": "x.obj", "license": "t",
                               "metadata": {"broken": None, "textured": False}}
    return AssetManifest("objects", "1", "/data", assets)


BACKGROUNDS = AssetManifest("bg", "1", "/data", {
    f"bg{i:02d}": {"category": "background", "path": f"bg{i:02d}.jpg", "license": "t",
                   "metadata": {"broken": None}} for i in range(10)})


def config(*sets: str, preset: str = "demo") -> RenderConfig:
    return resolve_config(RenderConfig, "render", preset=preset, overrides=list(sets))


def test_paper_split_rounds_train_and_val_down_and_roles_follow_queries():
    plan = make_plan(config("assets.objects_per_category=30", "trajectory.per_object=120",
                            "split.queries_per_object=20"), manifest({"02691156": 40}), BACKGROUNDS)
    objects = {}
    for item in plan.items:
        objects.setdefault(item.object_id, item.split)
    splits = list(objects.values())
    assert (splits.count("train"), splits.count("val"), splits.count("test")) == (21, 4, 5)
    test_items = [i for i in plan.items if i.split == "test"]
    assert sum(i.role == "query" for i in test_items) == 5 * 20
    assert sum(i.role == "database" for i in test_items) == 5 * 100
    assert {i.role for i in plan.items if i.split != "test"} == {""}
    assert [i.item_id for i in plan.items] == list(range(30 * 120))


def test_plan_is_deterministic_and_seeded():
    objects = manifest({"a": 9, "b": 9})
    first = make_plan(config("seed=4"), objects, BACKGROUNDS)
    assert first == make_plan(config("seed=4"), objects, BACKGROUNDS)
    other = make_plan(config("seed=5"), objects, BACKGROUNDS)
    assert [i.object_id for i in other.items] != [i.object_id for i in first.items]


@pytest.mark.parametrize("num_tasks", [1, 2, 3, 7, 36, 50])
def test_tasks_partition_the_items(num_tasks):
    plan = make_plan(config(), manifest({"a": 5, "b": 5, "c": 5}), BACKGROUNDS)
    parts = [plan.task_items(t, num_tasks) for t in range(num_tasks)]
    assert [i for part in parts for i in part] == list(plan.items)


def test_distractors_use_other_objects_other_backgrounds_and_other_ids():
    objects = manifest({"a": 10})
    retrieval = make_plan(config("assets.objects_per_category=4"), objects, BACKGROUNDS)
    distractor = make_plan(config("mode=distractor", "assets.skip_objects=4", "assets.objects_per_category=6"),
                           objects, BACKGROUNDS)
    assert not {i.object_id for i in retrieval.items} & {i.object_id for i in distractor.items}
    assert len({i.object_id for i in distractor.items}) == 6
    assert not set(retrieval.background_ids) & set(distractor.background_ids)
    assert len(retrieval.background_ids) == 8 and len(distractor.background_ids) == 2
    assert {i.split for i in distractor.items} == {"distractor"}
    assert min(i.item_id for i in distractor.items) == DISTRACTOR_ID_OFFSET


def test_categories_by_id_or_name_top_k_and_skipped_objects_counted():
    objects = manifest({"a": 3, "b": 5, "c": 4}, broken=2, untextured=3)
    plan = make_plan(config("assets.top_categories=2"), objects, BACKGROUNDS)
    assert plan.categories == ("b", "c")
    assert plan.skipped_objects == {"empty OBJ": 2, "untextured": 3}
    by_name = make_plan(config("assets.categories=[namea, c]"), objects, BACKGROUNDS)
    assert by_name.categories == ("a", "c")
    with pytest.raises(BlurgenError, match=r"category 'nameb2' has no usable objects.*did you mean 'nameb'"):
        make_plan(config("assets.categories=[nameb2]"), objects, BACKGROUNDS)


def test_a_config_that_selects_nothing_fails_at_once():
    with pytest.raises(BlurgenError, match="selects no objects"):
        make_plan(config("assets.skip_objects=50"), manifest({"a": 3}), BACKGROUNDS)
    with pytest.raises(BlurgenError, match="no usable objects"):
        make_plan(config(), manifest({}, broken=2), BACKGROUNDS)
    empty_bg = dataclasses.replace(BACKGROUNDS, assets={})
    with pytest.raises(BlurgenError, match="no usable backgrounds"):
        make_plan(config(), manifest({"a": 3}), empty_bg)


def test_task_index_comes_from_option_then_slurm_then_kubernetes():
    env = {"SLURM_ARRAY_TASK_ID": "3", "JOB_COMPLETION_INDEX": "5"}
    assert task_index_from(1, 10, env) == 1
    assert task_index_from(None, 10, env) == 3
    assert task_index_from(None, 10, {"JOB_COMPLETION_INDEX": "5"}) == 5
    assert task_index_from(None, 10, {}) is None
    with pytest.raises(BlurgenError, match="SLURM_ARRAY_TASK_ID is 12 but the job has 10 task"):
        task_index_from(None, 10, {"SLURM_ARRAY_TASK_ID": "12"})
    with pytest.raises(BlurgenError, match="not a task index"):
        task_index_from(None, 10, {"JOB_COMPLETION_INDEX": "x"})


def test_presets_match_the_paper():
    paper = config(preset="paper")
    assert (paper.camera.width, paper.camera.height) == (320, 240)
    assert (paper.assets.top_categories, paper.assets.objects_per_category) == (39, 30)
    assert (paper.trajectory.per_object, paper.images.max_window, paper.images.sharp) == (120, 10, True)
    assert paper.split.queries_per_object == 20 and paper.labels.erosion_px == 3
    assert (paper.labels.min_coverage, paper.labels.min_iou) == (0.015, 0.2)
    distractor = config(preset="paper-distractor")
    assert distractor.mode == "distractor"
    assert (distractor.assets.skip_objects, distractor.assets.objects_per_category) == (30, 40)
    assert (distractor.trajectory.per_object, distractor.images.max_window) == (70, 10)
