"""``blurgen shards``: look at, check and index a folder of HDF5 shards, show the schemas, cut
subsets and publish releases.

Thin commands over :mod:`blurgen.shards`. A missing folder or an unreadable manifest is the
user's to fix (ShardError: one line, exit 2); damaged data found by ``verify`` exits with 1.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
from tqdm import tqdm

from blurgen.errors import ShardError
from blurgen.shards import (
    folder_info,
    format_info,
    format_level_table,
    level_table,
    read_manifest,
    rebuild_manifest,
    verify_dir,
)
from blurgen.shards.info import human_bytes
from blurgen.shards.manifest import build_manifest, list_shard_files, shard_entry
from blurgen.shards.release import shard_folder
from blurgen.shards.schema import declared_schemas, get_schema
from blurgen.shards.schema_docs import schema_table, update_docs
from blurgen.shards.schemas import GENERATOR_SCHEMAS
from blurgen.shards.stats import role_table

_FOLDER = click.argument("folder", type=click.Path(file_okay=False, path_type=Path))


@click.group(no_args_is_help=True)
def shards() -> None:
    """Inspect, verify and preview HDF5 shards."""


@shards.command()
@_FOLDER
def info(folder: Path) -> None:
    """Schema, shard and sample counts, fields and the config that made the shards in FOLDER."""
    click.echo(format_info(folder_info(folder)))


@shards.command()
@_FOLDER
@click.pass_context
def verify(ctx: click.Context, folder: Path) -> None:
    """Check every shard in FOLDER against manifest.json: size, sha256, every chunk's checksum.

    Exits with 1 when anything is wrong, naming each bad shard and why.
    """
    _require_folder(folder)
    with tqdm(total=len(list_shard_files(shard_folder(folder))), unit="shard", desc="verify", disable=None,
              leave=False) as bar:
        def advance(name: str) -> None:
            bar.set_postfix_str(name, refresh=False)
            bar.update()
        report = verify_dir(folder, progress=advance)
    if report.ok:
        click.echo(f"OK: {report.shards} shards, {report.samples} samples, "
                   f"{human_bytes(report.bytes)} verified in {folder}")
        return
    problems = report.problems()
    for line in problems:
        click.echo(f"BAD {line}")
    bad = len(report.bad) + len(report.missing) + len(report.unlisted)
    click.echo(f"FAILED: {len(problems)} problem(s), {bad} of {report.shards + len(report.missing)} "
               f"shards affected in {folder}")
    ctx.exit(1)


@shards.command()
@_FOLDER
@click.option("--json", "as_json", is_flag=True, help="Print the table as JSON.")
def stats(folder: Path, as_json: bool) -> None:
    """Samples per split and blur level (1..10) of the shards in FOLDER (or a release), from
    manifest.json; for render shards also the paper's Table 1 rows by role (query, database,
    distractor), from the shards' columns: blurred images only, as Table 1 counts them, with
    each role's sharp images in a column of their own."""
    _require_folder(folder)
    folder = shard_folder(folder)
    manifest = read_manifest(folder)
    if manifest is None:  # count from the files themselves; no checksums needed for counting
        manifest = build_manifest(shard_entry(p, checksum=False) for p in list_shard_files(folder))
    if not manifest["shards"]:
        raise ShardError(f"no shards in {folder}")
    table = level_table(manifest)
    roles = role_table(folder)
    if as_json:
        data = table.to_dict()
        if roles is not None:
            data["by_role"] = roles.to_dict()
        click.echo(json.dumps(data, indent=2))
        return
    click.echo(format_level_table(table))
    if roles is not None:
        click.echo("")
        if roles.sharp is not None:
            click.echo("blurred images by role (the paper's Table 1 rows); sharp: each trajectory's sharp image, "
                       "in neither the levels nor the total")
        click.echo(format_level_table(roles))


@shards.command()
@_FOLDER
def index(folder: Path) -> None:
    """Rebuild FOLDER/manifest.json from the shard files (reads and checksums every shard)."""
    manifest = rebuild_manifest(folder)
    t = manifest["totals"]
    click.echo(f"wrote {folder / 'manifest.json'}: {t['shards']} shards, {t['samples']} samples, "
               f"{human_bytes(t['bytes'])}")


@shards.command()
@_FOLDER
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="PNG file to write.")
@click.option("--count", default=16, show_default=True, help="Number of samples on the sheet.")
@click.option("--cols", default=4, show_default=True, help="Samples per row.")
@click.option("--tile-width", default=240, show_default=True, help="Width of each image in pixels.")
def preview(folder: Path, out: Path, count: int, cols: int, tile_width: int) -> None:
    """Contact sheet of samples in FOLDER: labels, boxes, mask overlays, flow colours."""
    from blurgen.viz.preview import preview_shards  # OpenCV drawing only when asked for

    _require_folder(folder)
    click.echo(f"wrote {preview_shards(folder, out, count=count, cols=cols, tile_width=tile_width)}")


@shards.command("export-flo")
@_FOLDER
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder to write the .flo files to (made if missing).")
@click.option("--field", type=click.Choice(["flow_fwd", "flow_bwd", "both"]), default="flow_fwd",
              show_default=True, help="Which flow to export; both: <id>_fwd.flo and <id>_bwd.flo.")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Export only the first N samples (default: all).")
@click.option("--mark-invalid", is_flag=True,
              help="Write pixels that flow_valid marks invalid as unknown (1e10, Middlebury's convention).")
def export_flo(folder: Path, out: Path, field: str, limit: int | None, mark_invalid: bool) -> None:
    """Write the flow of each sample in FOLDER as a Middlebury .flo file named by its sample_id.

    Works for any shards with flow fields (flowpairs, render with flow). OpenCV reads the files
    with cv2.readOpticalFlow.
    """
    from blurgen.flow.flo import export_shards_flo

    _require_folder(folder)
    fields = ("flow_fwd", "flow_bwd") if field == "both" else (field,)
    with tqdm(unit="sample", desc="export-flo", disable=None, leave=False) as bar:
        count = export_shards_flo(folder, out, fields=fields, limit=limit, mark_invalid=mark_invalid,
                                  on_sample=bar.update)
    click.echo(f"wrote {count * len(fields)} .flo file(s) of {count} sample(s) to {out}")


@shards.command()
@click.argument("name", required=False)
@click.option("--update-docs", "docs", type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Regenerate the schema tables of this Markdown file (docs/shard-format.md).")
@click.option("--check", is_flag=True, help="With --update-docs: change nothing, exit 1 if the tables are stale.")
@click.pass_context
def schema(ctx: click.Context, name: str | None, docs: Path | None, check: bool) -> None:
    """The declared shard schemas; with NAME, that schema's field table (Markdown).

    The tables in docs/shard-format.md are generated: after changing a declaration in
    blurgen/shards/schemas.py run `blurgen shards schema --update-docs docs/shard-format.md`.
    """
    if docs is not None:
        text = docs.read_text(encoding="utf-8")
        updated = update_docs(text, required=GENERATOR_SCHEMAS)
        if updated == text:
            click.echo(f"{docs}: the schema tables are up to date")
        elif check:
            click.echo(f"{docs}: the schema tables differ from blurgen/shards/schemas.py; "
                       f"run: blurgen shards schema --update-docs {docs}")
            ctx.exit(1)
        else:
            docs.write_text(updated, encoding="utf-8")
            click.echo(f"{docs}: schema tables regenerated")
        return
    if name is not None:
        click.echo(schema_table(get_schema(name)))
        return
    for declared in declared_schemas():
        click.echo(f"{declared.name}  {declared.doc}")


@shards.command()
@click.argument("folders", nargs=-1, required=True, metavar="DIR [DIR ...]")
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The release folder to create (must not exist, or be empty).")
@click.option("--name", help="The dataset's name (default: the set names joined by '+').")
@click.option("--license", "license_id", metavar="SPDX", help="SPDX id of the release's licence, e.g. CC-BY-4.0.")
@click.option("--creator", help="Who publishes the data.")
@click.option("--url", help="Where the release will live.")
@click.option("--description", help="One paragraph for the card's summary.")
@click.option("--date", "date_published", metavar="YYYY-MM-DD", help="Publication date (default: none).")
@click.option("--copy", is_flag=True, help="Copy the shards even where hard links are possible.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False, path_type=Path),
              help="YAML file with these options (and tags, version, preview); options given here win.")
def publish(folders: tuple[str, ...], out: Path, name: str | None, license_id: str | None, creator: str | None,
            url: str | None, description: str | None, date_published: str | None, copy: bool,
            config_file: Path | None) -> None:
    """Verify the shards of each DIR and build a release in OUT: data/ (shards + manifest),
    README.md (dataset card), croissant.json, SHA256SUMS and previews/.

    A DIR may be written NAME=DIR to name its set (default: the folder's name). Every input
    shard is verified first; a release is built in a hidden folder and appears only when complete.
    """
    from blurgen.config import resolve_config
    from blurgen.shards.publish import publish as publish_release
    from blurgen.shards.publish_config import KIND, PublishConfig

    given = {"name": name, "license": license_id, "creator": creator, "url": url, "description": description,
             "date_published": date_published}
    overrides: dict = {k: v for k, v in given.items() if v is not None}
    if copy:
        overrides["link"] = False
    config = resolve_config(PublishConfig, KIND, preset=None, config_file=config_file, overrides=overrides)
    result = publish_release(list(folders), out, config)
    how = f"{result.linked} hard-linked, {result.shards - result.linked} copied"
    click.echo(f"published {result.samples} samples in {result.shards} shards ({how}) to {result.out}")
    for note in result.notes:
        click.echo(f"note: {note}")


@shards.command()
@_FOLDER
@click.option("--out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder for the new shards, manifest.json and subset.json (must not exist, or be empty).")
@click.option("--split", "splits", multiple=True, help="Keep this split; repeatable.")
@click.option("--role", "roles", multiple=True,
              help="Keep this role (render: query, database, distractor); repeatable.")
@click.option("--levels", help="Keep these blur levels: 1-6, 3 or 1,3,5.")
@click.option("--per-trajectory", type=int, help="At most N samples per trajectory (render).")
@click.option("--balance-levels", is_flag=True, help="Keep as many samples of each blur level as of the rarest.")
@click.option("--max-samples", type=int, help="At most N samples in all.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of every random choice.")
def subset(folder: Path, out: Path, splits: tuple[str, ...], roles: tuple[str, ...], levels: str | None,
           per_trajectory: int | None, balance_levels: bool, max_samples: int | None, seed: int) -> None:
    """Write a deterministic selection of the samples in FOLDER as new shards in OUT.

    Filters (--split, --role, --levels) first, then --per-trajectory, --balance-levels and
    --max-samples. OUT/subset.json records the source and which samples were taken.
    """
    from blurgen.shards.subset import Selection, parse_levels
    from blurgen.shards.subset import subset as write_subset

    _require_folder(folder)
    selection = Selection(splits=splits, roles=roles, levels=parse_levels(levels) if levels else (),
                          per_trajectory=per_trajectory, balance_levels=balance_levels,
                          max_samples=max_samples, seed=seed)
    record = write_subset(folder, out, selection)
    click.echo(f"wrote {record['samples']} of {record['source']['samples']} samples in "
               f"{len(record['shards'])} shard(s) to {out}")


def _require_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ShardError(f"shard folder not found: {folder}")
