"""``blurgen shards publish``: turn verified shard folders into a release a maintainer uploads as it is.

Order of work, so that a bad input costs nothing and leaves nothing:

1. check the options (licence, date) and the output (an existing non-empty ``--out`` is refused);
2. verify every input shard against its manifest (sha256 and every chunk), refusing a bad,
   missing or unlisted shard by name;
3. check the inputs belong in one release: one schema, the same fields (dtype, shape), no
   sample id twice, and for render data distractor objects disjoint from the retrieval set's;
4. build the release in a hidden sibling folder (``blurgen.train.report.staged_folder``) and
   rename it to ``--out`` when complete: the shards hard-linked (or copied) into ``data/`` under
   names that say their split and set, ``data/manifest.json``, the previews, the card,
   ``croissant.json`` and ``SHA256SUMS``. An error or an interruption removes the hidden folder.

Inputs are only read. Nothing written depends on the time (unless ``date_published`` is given)
or on whether a shard was linked or copied, so the same inputs and options give the same bytes.
The layout is :mod:`blurgen.shards.release`; docs/publish.md is the maintainer's page.
"""

from __future__ import annotations

import datetime
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from tqdm import tqdm

from blurgen.atomic import atomic_write_text
from blurgen.errors import BlurgenError
from blurgen.shards.card import CardContent, ReleaseFile, render_card, summary_text
from blurgen.shards.composition import composition
from blurgen.shards.croissant import croissant_document, croissant_text
from blurgen.shards.generators import BLURGEN_BIBTEX, generator_info
from blurgen.shards.licenses import License, get_license
from blurgen.shards.manifest import MANIFEST_NAME, build_manifest, make_entry, read_manifest, sha256_file
from blurgen.shards.provenance import SetRecord, read_set
from blurgen.shards.publish_config import PublishConfig
from blurgen.shards.reader import ShardDataset, shard_fields
from blurgen.shards.release import (CARD_NAME, CROISSANT_NAME, DATA_DIR, PREVIEWS_DIR, SET_NAME, SUMS_NAME,
                                    new_output_folder, release_shard_name, shard_folder)
from blurgen.shards.schema import get_schema, is_declared
from blurgen.shards.stats import DISTRACTOR_SPLIT, level_table
from blurgen.shards.verify import require_verified
from blurgen.train.report import staged_folder


@dataclass(frozen=True)
class InputSet:
    """One input folder of a release and the name its shards get there."""

    name: str
    folder: Path  # the folder holding the shards and manifest.json


@dataclass(frozen=True)
class PublishResult:
    out: Path
    shards: int
    samples: int
    linked: int              # shards hard-linked from their input (the rest were copied)
    notes: tuple[str, ...]   # what the maintainer should look at (the card says the same)


def parse_inputs(inputs: Sequence[str | Path] | Mapping[str, str | Path]) -> list[InputSet]:
    """Input folders with their set names: ``{name: folder}``, or folders (``NAME=DIR`` names one;
    otherwise the folder's name, with anything but letters, digits and '_' turned into '_')."""
    pairs: list[tuple[str, Path]] = []
    items = inputs.items() if isinstance(inputs, Mapping) else [(None, i) for i in inputs]
    for name, given in items:
        text = str(given)
        if name is None and "=" in text and not Path(text).exists():
            name, _, text = text.partition("=")
        path = Path(text)
        if name is None:
            name = "".join(c if c.isalnum() or c == "_" else "_" for c in path.resolve().name) or "set"
        if not SET_NAME.match(name):
            raise BlurgenError(f"set name {name!r} must be letters, digits or '_' (give NAME=DIR)")
        if not path.is_dir():
            raise BlurgenError(f"shard folder not found: {path}")
        pairs.append((name, shard_folder(path)))
    if not pairs:
        raise BlurgenError("publish needs at least one shard folder")
    names = [n for n, _ in pairs]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise BlurgenError(f"two inputs are both named '{dup}': name them with NAME=DIR (e.g. retrieval=out/a)")
    folders = [p.resolve() for _, p in pairs]
    if len(set(folders)) != len(folders):
        raise BlurgenError("the same shard folder is given twice")
    for name, folder in pairs:
        if read_manifest(folder) is None:
            raise BlurgenError(f"{folder} has no {MANIFEST_NAME}: create it with: blurgen shards index {folder}")
    return [InputSet(n, p) for n, p in pairs]


def publish(inputs: Sequence[str | Path] | Mapping[str, str | Path], out: str | Path,
            config: PublishConfig | None = None, *, progress: bool = True) -> PublishResult:
    """Verify ``inputs`` and write the release folder ``out``; see the module doc."""
    config = config or PublishConfig()
    licence = _checked_options(config)
    sets = parse_inputs(inputs)
    out = new_output_folder(out, "release")
    for s in sets:
        if out.resolve() == s.folder.resolve() or s.folder.resolve() in out.resolve().parents:
            raise BlurgenError(f"--out {out} is inside the input {s.folder}: give a folder outside it")
    for s in sets:
        _verify(s, progress)
    schema_name = _check_compatible(sets)
    with staged_folder(out) as staging:
        files, linked = _place_shards(sets, staging / DATA_DIR, config.link, progress)
        records = _write_release(staging, sets, files, schema_name, licence, config)
    notes = tuple(f"set {r.name}: the {a.role} manifest {a.configured} was not found: the card cannot give "
                  "its sha256 and licences" for r in records for a in r.assets if not a.found)
    return PublishResult(out, len(files), sum(f.samples for f in files), linked, notes)


def _checked_options(config: PublishConfig) -> License:
    if not config.license:
        raise BlurgenError("a release needs a licence: give --license SPDX-ID (e.g. CC-BY-4.0) or "
                           "license: in --config")
    licence = get_license(config.license)
    if config.date_published is not None:
        try:
            datetime.datetime.fromisoformat(config.date_published)
        except ValueError:
            raise BlurgenError(f"date_published {config.date_published!r} is not an ISO 8601 date "
                               "(e.g. 2026-12-01)") from None
    return licence


def _verify(s: InputSet, progress: bool) -> None:
    report = require_verified(s.folder, "nothing published", desc=f"verify {s.name}", progress=progress)
    if report.samples == 0:
        raise BlurgenError(f"{s.folder} holds no samples: nothing to publish")


def _check_compatible(sets: Sequence[InputSet]) -> str:
    """The release's schema; one line when the inputs cannot share a release."""
    schemas = {}
    for s in sets:
        names = sorted({e["schema"] for e in read_manifest(s.folder)["shards"]})
        if len(names) > 1:
            raise BlurgenError(f"{s.folder} mixes shard schemas ({', '.join(names)}): one release holds one schema")
        schemas[s.name] = names[0]
    if len(set(schemas.values())) > 1:
        (a, schema_a), (b, schema_b) = (min(schemas.items(), key=lambda kv: kv[1]),
                                        max(schemas.items(), key=lambda kv: kv[1]))
        raise BlurgenError(f"inputs of different schemas cannot share a release: {a} is {schema_a}, "
                           f"{b} is {schema_b}")
    datasets = {s.name: ShardDataset(s.folder) for s in sets}
    reference = None
    for s in sets:
        first = next(p for p, n in zip(datasets[s.name].paths, datasets[s.name].counts) if n > 0)
        fields = {f.name: (f.dtype, f.shape) for f in shard_fields(first)}
        if reference is None:
            reference = (s.name, fields)
            continue
        name, ref = reference
        for key in sorted(set(ref) | set(fields)):
            if ref.get(key) != fields.get(key):
                raise BlurgenError(f"incompatible sets: field '{key}' is {_describe(ref.get(key))} in {name} and "
                                   f"{_describe(fields.get(key))} in {s.name} (a release is one table: same fields, "
                                   "dtypes and image size)")
    _check_unique_ids(sets, datasets)
    if len(sets) > 1 and "object_id" in reference[1]:
        _check_disjoint_distractors(sets, datasets)
    return next(iter(schemas.values()))


def _describe(spec: tuple[str, tuple[int, ...]] | None) -> str:
    if spec is None:
        return "missing"
    dtype, shape = spec
    return f"{dtype} {shape}"


def _check_unique_ids(sets: Sequence[InputSet], datasets: Mapping[str, ShardDataset]) -> None:
    owner: dict[str, str] = {}
    for s in sets:
        for sample_id in datasets[s.name].column("sample_id"):
            other = owner.setdefault(sample_id, s.name)
            if other != s.name:
                raise BlurgenError(f"sample '{sample_id}' is in both {other} and {s.name}: the sets overlap "
                                   "(the same job given twice?)")


def _check_disjoint_distractors(sets: Sequence[InputSet], datasets: Mapping[str, ShardDataset]) -> None:
    """Distractors must show other objects than the retrieval set (the paper's protocol counts
    any image of a query's object as a positive, so a shared object would be mislabelled)."""
    distractor, retrieval = {}, {}
    for s in sets:
        ds = datasets[s.name]
        for obj, split in zip(ds.column("object_id"), ds.column("split")):
            (distractor if split == DISTRACTOR_SPLIT else retrieval).setdefault(obj, s.name)
    shared = sorted(set(distractor) & set(retrieval))
    if shared:
        raise BlurgenError(f"incompatible sets: object '{shared[0]}' is a distractor in {distractor[shared[0]]} "
                           f"and in the retrieval splits of {retrieval[shared[0]]} ({len(shared)} shared objects): "
                           "render the distractor set with the same seed and object manifest and skip_objects")


def _place_shards(sets: Sequence[InputSet], data: Path, link: bool,
                  progress: bool) -> tuple[list[ReleaseFile], int]:
    """Hard-link (or copy) every input shard into ``data/`` under its release name; write the
    release's manifest. Returns the files, in manifest order, and how many were linked."""
    data.mkdir()
    entries, files, linked = [], [], 0
    todo = [(s, e) for s in sets for e in read_manifest(s.folder)["shards"]]
    for s, e in tqdm(todo, unit="shard", desc="place", disable=not progress or None, leave=False):
        name = release_shard_name(e["split"], s.name, e["task_index"], e["num_tasks"])
        if (data / name).exists():
            raise BlurgenError(f"two shards of {s.name} would both be {name}: rebuild its manifest "
                               f"(blurgen shards index {s.folder})")
        linked += _place(s.folder / e["file"], data / name, link, e["sha256"])
        entries.append(make_entry(name, schema=e["schema"], split=e["split"], task_index=e["task_index"],
                                  num_tasks=e["num_tasks"], samples=e["samples"], nbytes=e["bytes"],
                                  sha256=e["sha256"], blur_levels=e.get("blur_levels")))
        files.append(ReleaseFile(f"{DATA_DIR}/{name}", s.name, e["split"], int(e["samples"]), int(e["bytes"]),
                                 e["sha256"]))
    manifest = build_manifest(entries)
    atomic_write_text(data / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    rank = {f"{DATA_DIR}/{e['file']}": k for k, e in enumerate(manifest["shards"])}
    files.sort(key=lambda f: rank[f.path])
    return files, linked


def _place(src: Path, dst: Path, link: bool, sha256: str) -> bool:
    """Link ``src`` to ``dst`` where the file system allows (same device, links supported), else
    copy it and check the copy's sha256; True when linked."""
    if link:
        try:
            os.link(src, dst)
            return True
        except OSError:  # another file system (EXDEV), or one without hard links
            pass
    shutil.copyfile(src, dst)
    if sha256_file(dst) != sha256:
        raise BlurgenError(f"the copy of {src} differs from its manifest's sha256: the input changed while "
                           "publishing, or the disk is failing; verify it and publish again")
    return False


def _write_release(root: Path, sets: Sequence[InputSet], files: list[ReleaseFile], schema_name: str,
                   licence: License, config: PublishConfig) -> tuple[SetRecord, ...]:
    """Everything but the shards: previews, card, Croissant, sums; returns the sets' records."""
    data = root / DATA_DIR
    records = tuple(read_set(s.name, s.folder) for s in sets)
    present = [f.name for f in shard_fields(next(root / f.path for f in files if f.samples))]
    schema = get_schema(schema_name).holding(present) if is_declared(schema_name) else None
    if schema is None:
        raise BlurgenError(f"schema {schema_name} is not declared in this blurgen: its fields cannot be described")
    splits = level_table(read_manifest(data)).splits
    generator = generator_info(schema_name)
    card = CardContent(
        name=config.name or "+".join(s.name for s in sets), license=licence, config=config, schema=schema,
        generator=generator, sets=records, splits=splits, tables=tuple(composition(data, schema_name)),
        files=tuple(files), previews=tuple(write_previews(root, schema_name, splits, files, config)))
    atomic_write_text(root / CARD_NAME, render_card(card))
    manifest_path = data / MANIFEST_NAME
    doc = croissant_document(card.name, summary_text(card), licence, config,
                             generator.bibtex if generator else BLURGEN_BIBTEX, files,
                             (f"{DATA_DIR}/{MANIFEST_NAME}", manifest_path.stat().st_size, sha256_file(manifest_path)))
    atomic_write_text(root / CROISSANT_NAME, croissant_text(doc))
    write_sums(root, files)
    return records


def write_previews(root: Path, schema_name: str, splits: Sequence[str], files: Sequence[ReleaseFile],
                   config: PublishConfig) -> list[tuple[str, str]]:
    """A contact sheet per split and, for render data, one per blur level; (caption, path) each."""
    from blurgen.viz.preview import PREVIEW_FIELDS, pick_samples, preview_shards, sample_cell
    from blurgen.viz.sheet import tile_grid, write_png

    p = config.preview
    folder = root / PREVIEWS_DIR
    made = []
    for split in splits:
        paths = [root / f.path for f in files if f.split == split and f.samples]
        if paths:
            preview_shards(paths, folder / f"split-{split}.png", count=p.count, cols=p.cols, tile_width=p.tile_width)
            made.append((f"split {split}", f"{PREVIEWS_DIR}/split-{split}.png"))
    if schema_name != "blurgen.render/1":
        return made
    dataset = ShardDataset(root / DATA_DIR)
    view = ShardDataset(root / DATA_DIR, fields=[f for f in PREVIEW_FIELDS if f in dataset.fields])
    levels = np.asarray(view.column("blur_level"))
    for level in np.unique(levels).tolist():
        chosen = _Selection(view, np.flatnonzero(levels == level))
        cells = [sample_cell(chosen[i], p.tile_width) for i in pick_samples(chosen, p.count)]
        write_png(folder / f"level-{level}.png", tile_grid(cells, p.cols))
        made.append((f"blur level {level}", f"{PREVIEWS_DIR}/level-{level}.png"))
    return made


class _Selection:
    """Some samples of a dataset, in its order: what a contact sheet picks from."""

    def __init__(self, dataset: ShardDataset, indices: np.ndarray) -> None:
        self._dataset, self._indices = dataset, indices
        self.fields = dataset.fields

    def __len__(self) -> int:
        return len(self._indices)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._dataset[int(self._indices[i])]

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self._dataset.column(name))[self._indices]


def write_sums(root: Path, files: Sequence[ReleaseFile]) -> None:
    """``SHA256SUMS``: every file of the release but itself, by path, as ``sha256sum`` writes it.
    The shards' sums come from their verified manifest entries (no second read of the data)."""
    known = {f.path: f.sha256 for f in files}
    sums = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != SUMS_NAME):
        rel = path.relative_to(root).as_posix()
        sums[rel] = known.get(rel) or sha256_file(path)
    atomic_write_text(root / SUMS_NAME, "".join(f"{sha}  {rel}\n" for rel, sha in sorted(sums.items())))
