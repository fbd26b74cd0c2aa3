"""The dataset card of a release: ``README.md`` with Hugging Face YAML front matter, then the
sections people who download data look for.

The front matter follows the Hub's dataset-card convention (``license``, ``pretty_name``,
``task_categories``, ``tags``, ``size_categories``) and declares the splits in ``configs`` with a
``data_files`` pattern per split, which is what the Hub's viewer and ``datasets``' ``hdf5``
builder read to find them. The card holds the field tables too: Croissant has no HDF5 record
sets, so the card is where a field's dtype, shape and meaning are written down. Nothing in it
depends on the time or the machine it was written on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Sequence

import yaml

from blurgen import __version__
from blurgen.shards.composition import CountTable
from blurgen.shards.generators import BLURGEN_BIBTEX, GeneratorInfo
from blurgen.shards.info import human_bytes
from blurgen.shards.licenses import License
from blurgen.shards.provenance import AssetRecord, SetRecord
from blurgen.shards.publish_config import PublishConfig
from blurgen.shards.release import CROISSANT_NAME, DATA_DIR, SUMS_NAME, split_pattern
from blurgen.shards.schema import Schema
from blurgen.shards.schema_docs import schema_table
from blurgen.train.report import markdown_table

# The Hub's size buckets: (upper bound, label); the first bound above the count names it.
_SIZE_BUCKETS = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                 (10_000_000, "1M<n<10M"), (100_000_000, "10M<n<100M"), (1_000_000_000, "100M<n<1B"),
                 (10**10, "1B<n<10B"), (10**11, "10B<n<100B"), (10**12, "100B<n<1T"))


@dataclass(frozen=True)
class ReleaseFile:
    """One shard of a release as the card lists it."""

    path: str      # relative to the release root: data/<name>.h5
    set_name: str
    split: str
    samples: int
    bytes: int
    sha256: str


@dataclass(frozen=True)
class CardContent:
    """Everything the card says, gathered by the publisher."""

    name: str
    license: License
    config: PublishConfig
    schema: Schema                      # narrowed to the fields the shards hold
    generator: GeneratorInfo | None
    sets: tuple[SetRecord, ...]
    splits: tuple[str, ...]
    tables: tuple[CountTable, ...]
    files: tuple[ReleaseFile, ...]
    previews: tuple[tuple[str, str], ...]  # (caption, path relative to the release root)

    @property
    def samples(self) -> int:
        return sum(f.samples for f in self.files)


def size_category(samples: int) -> str:
    for bound, label in _SIZE_BUCKETS:
        if samples < bound:
            return label
    return "n>1T"


def front_matter(card: CardContent) -> dict[str, Any]:
    """The YAML front matter as data (the Hub's keys, the splits' data files)."""
    gen = card.generator
    tags = list(dict.fromkeys(["blurgen", *(gen.tags if gen else ()), *card.config.tags]))
    return {
        "license": card.license.hub,
        "pretty_name": card.name,
        "task_categories": list(gen.task_categories) if gen else [],
        "tags": tags,
        "size_categories": [size_category(card.samples)],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": s, "path": split_pattern(s)} for s in card.splits]}],
    }


def render_card(card: CardContent) -> str:
    """The whole ``README.md``."""
    yaml_text = yaml.safe_dump(front_matter(card), sort_keys=False, allow_unicode=True, width=1000)
    parts = [f"---\n{yaml_text}---\n", f"# {card.name}\n", _summary(card), _how_made(card), _composition(card),
             _drops(card), _fields(card), _files(card), _loading(card), _previews(card), _limits(card),
             _license(card), _citation(card)]
    return "\n".join(p.rstrip("\n") + "\n" for p in parts if p)


def summary_text(card: CardContent) -> str:
    """The given description, or one made from the generator (the card's and Croissant's)."""
    gen = card.generator
    made = f"made with `{gen.command}` (blurgen): {gen.what}" if gen else f"shards of schema `{card.schema.name}`"
    return card.config.description or f"Motion-blur data {made}."


def _summary(card: CardContent) -> str:
    text = summary_text(card)
    splits = ", ".join(f"{s} {sum(f.samples for f in card.files if f.split == s)}" for s in card.splits)
    lines = ["## Summary", "", text, "",
             f"- samples: {card.samples} ({splits})",
             f"- shards: {len(card.files)} HDF5 files, {human_bytes(sum(f.bytes for f in card.files))}, "
             f"schema `{card.schema.name}`",
             f"- sets: {', '.join(s.name for s in card.sets)}",
             f"- version: {card.config.version}"]
    if card.config.date_published:
        lines.append(f"- published: {card.config.date_published}")
    if card.config.creator:
        lines.append(f"- creator: {card.config.creator}")
    if card.config.url:
        lines.append(f"- home: {card.config.url}")
    return "\n".join(lines) + "\n"


def _how_made(card: CardContent) -> str:
    gen = card.generator
    lines = ["## How it was made", ""]
    if gen:
        lines += [f"Generator: `{gen.command}`, which implements the data generation of *{gen.paper}*. "
                  f"Published with blurgen {__version__} (`blurgen shards publish`).", ""]
    for s in card.sets:
        lines += [f"### Set `{s.name}`", "",
                  f"- schema `{s.schema}`, {s.shards} shard(s), {s.samples} samples",
                  f"- written by blurgen {', '.join(s.versions)}",
                  f"- seed {', '.join(map(str, s.seeds))}; the job was split into "
                  f"{', '.join(map(str, s.num_tasks))} task(s) (a task's samples do not depend on the split)"]
        if s.subset:
            sel = s.subset.get("selection", {})
            source = s.subset.get("source", {})
            lines.append(f"- a subset of {source.get('samples', '?')} samples (`{source.get('folder', '?')}`, "
                         f"manifest sha256 `{source.get('manifest_sha256', '?')}`) cut by `blurgen shards subset` "
                         f"with the selection {json.dumps(sel, sort_keys=True)}")
        if s.assets:
            lines += ["", "Asset manifests (licences and attributions as the manifests record them, for the "
                          "assets this set uses):", "", _asset_table(s.assets)]
        lines += ["", "The full resolved config:", "", "```json", json.dumps(s.config, indent=2, sort_keys=True),
                  "```", ""]
    return "\n".join(lines)


def _asset_table(assets: Sequence[AssetRecord]) -> str:
    rows = []
    for a in assets:
        if not a.found:
            rows.append([a.role, f"`{a.configured}`", "not found when publishing", "–", f"{a.used} used",
                         "–", "–"])
            continue
        licenses = "; ".join(f"{lic} ({n})" for lic, n in a.licenses.items()) or "–"
        used = f"{a.used} used" + (f" ({a.unlisted} not in this manifest)" if a.unlisted else "")
        rows.append([a.role, f"{a.name} {a.version} (`{a.configured}`)", f"`{a.sha256}`",
                     str(a.assets), used, licenses, "; ".join(a.attributions) or "–"])
    return markdown_table(["assets", "manifest", "sha256", "listed", "in this set", "licence (assets)",
                           "attribution"], rows).rstrip("\n")


def _composition(card: CardContent) -> str:
    lines = ["## Composition", ""]
    for t in card.tables:
        lines += [f"### {t.title}", ""]
        if t.note:
            lines += [t.note[0].upper() + t.note[1:] + ".", ""]
        lines += [markdown_table(t.header(), t.body()).rstrip("\n"), ""]
    return "\n".join(lines)


def _drops(card: CardContent) -> str:
    lines = ["## What the filters dropped", "",
             "Generators never drop silently: each task counts what it dropped or skipped, and why.", ""]
    why = card.generator.reasons if card.generator else {}
    rows = [[s.name, label, reason, n, why.get(reason, "–")] for s in card.sets
            for label, reasons in s.drops.items() for reason, n in reasons.items()]
    if rows:
        lines.append(markdown_table(["set", "what", "reason", "count", "why"], rows).rstrip("\n"))
    else:
        lines.append("Nothing was dropped or skipped.")
    return "\n".join(lines) + "\n"


def _fields(card: CardContent) -> str:
    return "\n".join([
        "## Fields", "",
        f"Every shard holds one dataset per field at its root, samples along the first axis; `H` x `W` is the "
        f"image size. Schema `{card.schema.name}`: {card.schema.doc}.", "",
        schema_table(card.schema), "",
        "Root attributes of each shard: `schema`, `blurgen_version`, `config` (the resolved config, JSON), `seed`, "
        "`task_index`, `num_tasks`, `split`, `num_samples`, `stats` (JSON: what the task dropped and why), "
        "`created_by`. Strings are fixed-length UTF-8; every chunk carries a fletcher32 checksum.", ""])


def _files(card: CardContent) -> str:
    rows = [[f"`{f.path}`", f.set_name, f.split, f.samples, human_bytes(f.bytes)] for f in card.files]
    return "\n".join([
        "## Files", "",
        f"`{DATA_DIR}/manifest.json` lists every shard with its sample count, size, sha256 and blur-level counts; "
        f"`{SUMS_NAME}` holds the sha256 of every file (`sha256sum -c {SUMS_NAME}`); `{CROISSANT_NAME}` describes "
        "the dataset and each shard in Croissant JSON-LD.", "",
        markdown_table(["file", "set", "split", "samples", "size"], rows).rstrip("\n"), ""])


def _loading(card: CardContent) -> str:
    first = card.files[0].path if card.files else f"{DATA_DIR}/<file>.h5"
    fields = card.schema.names[:3]
    return "\n".join([
        "## How to load it", "",
        "With h5py (gzip shards need nothing else):", "",
        "```python", "import json", "import h5py", "",
        f'with h5py.File("{first}", "r") as f:',
        '    print(f.attrs["schema"], f.attrs["num_samples"], json.loads(f.attrs["stats"]))',
        *[f'    {name} = f["{name}"][0]' for name in fields],
        '    sample_id = f["sample_id"][0].decode("utf-8")  # strings are fixed-length UTF-8 bytes',
        "```", "",
        "With blurgen (`pip install blurgen`; random access over all shards, safe in DataLoader workers):", "",
        "```python", "from blurgen.shards import ShardDataset", "",
        'dataset = ShardDataset(".")           # the release folder: reads data/manifest.json',
        "sample = dataset[0]                   # dict: field -> array, scalar or str", "```", "",
        "`blurgen shards verify .` checks every shard (sha256 and every chunk's checksum); "
        "`blurgen shards stats .` prints the counts above.", "",
        "With Hugging Face `datasets` (4.1 or newer reads HDF5 with its `hdf5` builder; the splits come from the "
        "`configs` of this card's front matter):", "",
        "```python", "from datasets import load_dataset", "",
        'dataset = load_dataset("path/or/hub-id/of/this/release")', "```", ""])


def _previews(card: CardContent) -> str:
    if not card.previews:
        return ""
    lines = ["## Previews", ""]
    for caption, path in card.previews:
        lines += [f"{caption}:", "", f"![{caption}]({path})", ""]
    return "\n".join(lines)


def _limits(card: CardContent) -> str:
    limits: list[str] = []
    for s in card.sets:
        for text in (card.generator.limits(s.config) if card.generator else []):
            line = f"- {text}" if len(card.sets) == 1 else f"- (`{s.name}`) {text}"
            if line not in limits:
                limits.append(line)
    limits.append("- Croissant has no record sets for HDF5: `croissant.json` lists the files with their "
                  "checksums, and the fields are described here.")
    return "\n".join(["## Known limits", "", *limits, ""])


def _license(card: CardContent) -> str:
    lic = card.license
    text = (f"This release is published under {lic.name} (`{lic.spdx}`, {lic.url}). The source assets keep "
            "their own licences (see the asset manifests above); images rendered from them may be bound by those.")
    return "\n".join(["## Licence", "", text, ""])


def _citation(card: CardContent) -> str:
    lines = ["## Citation", "", "Please cite the paper whose data generation this release follows, and blurgen:", ""]
    if card.generator:
        lines += ["```bibtex", card.generator.bibtex, "```", ""]
    lines += ["```bibtex", BLURGEN_BIBTEX, "```", ""]
    return "\n".join(lines)
