"""Planning a render job: which objects, which split and role, which trajectories, which task.

Planning is pure and deterministic: the same config and seed give the same work items with the
same global ids, however many tasks later share them. One work item is one trajectory of one
object; its randomness (trajectory, background, Cycles noise) comes from
``item_rng(seed, item_id, stream)`` so that cutting the job differently changes no sample.
"""

from __future__ import annotations

import dataclasses
import difflib
import zlib
from collections import Counter
from typing import Sequence

from blurgen.assets import AssetManifest
from blurgen.assets.mesh_checks import reason_kind
from blurgen.errors import BlurgenError
from blurgen.render.config import RenderConfig
from blurgen.render.normalise import Normalisation
from blurgen.farm import task_block
from blurgen.rng import item_rng

# Independent random streams of one work item (see blurgen.rng.item_rng).
STREAM_TRAJECTORY = 1
STREAM_BACKGROUND = 2
STREAM_CYCLES = 3
_STREAM_OBJECT_ORDER = 4

# Distractor items get ids above every retrieval id, so that the two sets never share a
# trajectory (same seed, same item id would otherwise mean the same trajectory) or a sample id.
DISTRACTOR_ID_OFFSET = 1 << 40


@dataclasses.dataclass(frozen=True)
class WorkItem:
    """One trajectory of one object: everything that decides its images, except the config."""

    item_id: int      # global trajectory id, unique across the job (and across retrieval/distractor)
    object_id: str    # asset id in the object manifest
    category: str     # ShapeNet synset id (or the manifest's category)
    split: str        # train / val / test / distractor
    role: str         # query / database for test objects, "" otherwise
    trajectory: int   # index of this trajectory among its object's


@dataclasses.dataclass(frozen=True)
class Plan:
    """The whole job: work items in global-id order plus what was left out and why."""

    items: tuple[WorkItem, ...]
    objects: AssetManifest
    backgrounds: AssetManifest
    background_ids: tuple[str, ...]           # the backgrounds this mode may use, sorted
    skipped_objects: dict[str, int]           # reason -> count (broken, untextured, ...)
    categories: tuple[str, ...]
    normalisations: dict[str, Normalisation]  # object id -> its file-to-unit-object map, per chosen object

    def task_items(self, task_index: int, num_tasks: int) -> tuple[WorkItem, ...]:
        """Task ``task_index`` of ``num_tasks`` takes a contiguous block of items.

        Contiguous blocks keep an object's trajectories together, so one Blender process
        imports each mesh once.
        """
        return tuple(task_block(self.items, task_index, num_tasks))


def make_plan(config: RenderConfig, objects: AssetManifest, backgrounds: AssetManifest) -> Plan:
    """Select objects per category, split them, and enumerate their trajectories."""
    usable, skipped = usable_objects(objects, config.assets.require_textured)
    categories = select_categories(usable, objects, config.assets.categories, config.assets.top_categories)
    items: list[WorkItem] = []
    normalisations: dict[str, Normalisation] = {}
    next_id = DISTRACTOR_ID_OFFSET if config.mode == "distractor" else 0
    for category in categories:
        chosen = choose_objects(config.seed, category, usable[category], config.assets.skip_objects,
                                config.assets.objects_per_category)
        for object_id, split in zip(chosen, split_names(len(chosen), config)):
            # read once, here: an object without bounds fails before anything renders
            normalisations[object_id] = Normalisation.of_asset(object_id, objects.get(object_id)["metadata"])
            for t in range(config.trajectory.per_object):
                role = "" if split != "test" else ("query" if t < config.split.queries_per_object else "database")
                items.append(WorkItem(next_id, object_id, category, split, role, t))
                next_id += 1
    if not items:
        raise BlurgenError("the config selects no objects: check assets.categories, assets.skip_objects "
                           "and the object manifest (blurgen assets scan-shapenet reports what is usable)")
    background_ids = select_backgrounds(backgrounds, config)
    return Plan(tuple(items), objects, backgrounds, background_ids, dict(sorted(skipped.items())),
                tuple(categories), normalisations)


def usable_objects(objects: AssetManifest, require_textured: bool) -> tuple[dict[str, list[str]], Counter]:
    """Objects per category that can be rendered, and counts of the others by reason."""
    usable: dict[str, list[str]] = {}
    skipped: Counter = Counter()
    for asset_id in objects.ids():
        entry = objects.get(asset_id)
        problem = objects.problem(asset_id)
        if problem is None and require_textured and not entry.get("metadata", {}).get("textured", True):
            problem = "untextured"
        if problem is not None:
            skipped[reason_kind(problem)] += 1
            continue
        usable.setdefault(entry["category"], []).append(asset_id)
    return usable, skipped


def select_categories(usable: dict[str, list[str]], objects: AssetManifest, wanted: Sequence[str],
                      top: int) -> list[str]:
    """Categories by id or name (one-line error with "did you mean"), then the top-K by usable count."""
    names = {c: _category_name(objects, ids) for c, ids in usable.items()}
    if wanted:
        by_name = {name: c for c, name in names.items() if name}
        chosen = []
        for want in wanted:
            if want in usable:
                chosen.append(want)
            elif want in by_name:
                chosen.append(by_name[want])
            else:
                close = difflib.get_close_matches(want, [*usable, *by_name], n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise BlurgenError(f"category '{want}' has no usable objects in the manifest{hint}")
    else:
        chosen = sorted(usable)
    if top:
        chosen = sorted(chosen, key=lambda c: (-len(usable[c]), c))[:top]
    if not chosen:
        raise BlurgenError("the object manifest has no usable objects (all broken or untextured)")
    return sorted(chosen)


def choose_objects(seed: int, category: str, ids: Sequence[str], skip: int, count: int) -> list[str]:
    """The category's objects in a seeded order, ``count`` of them after the first ``skip``."""
    rng = item_rng(seed, zlib.crc32(category.encode("utf-8")), _STREAM_OBJECT_ORDER)
    order = [ids[i] for i in rng.permutation(len(ids))]
    return order[skip:skip + count]


def split_names(n: int, config: RenderConfig) -> list[str]:
    """Split of each of a category's ``n`` chosen objects, in their seeded order.

    As in the paper: train and validation take their share rounded down, test the rest.
    """
    if config.mode == "distractor":
        return ["distractor"] * n
    n_train = int(config.split.train * n + 1e-9)
    n_val = min(int(config.split.val * n + 1e-9), n - n_train)
    return ["train"] * n_train + ["val"] * n_val + ["test"] * (n - n_train - n_val)


def select_backgrounds(backgrounds: AssetManifest, config: RenderConfig) -> tuple[str, ...]:
    """Usable backgrounds of this mode: distractors take the last share (by id), retrieval the rest."""
    ids = sorted(i for i in backgrounds.ids() if backgrounds.problem(i) is None)
    n_distractor = round(config.assets.distractor_background_fraction * len(ids))
    chosen = ids[len(ids) - n_distractor:] if config.mode == "distractor" else ids[:len(ids) - n_distractor]
    if not chosen:
        raise BlurgenError(f"no usable backgrounds for {config.mode} mode in the background manifest "
                           f"({len(ids)} usable in all; see assets.distractor_background_fraction)")
    return tuple(chosen)


def _category_name(objects: AssetManifest, ids: Sequence[str]) -> str:
    return str(objects.get(ids[0]).get("metadata", {}).get("category_name", "")) if ids else ""
