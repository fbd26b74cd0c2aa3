"""``blurgen shards``: look at, check and index a folder of HDF5 shards, and show the schemas.

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
from blurgen.shards.schema import declared_schemas, get_schema
from blurgen.shards.schema_docs import schema_table, update_docs
from blurgen.shards.schemas import GENERATOR_SCHEMAS

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
    with tqdm(total=len(list_shard_files(folder)), unit="shard", desc="verify", disable=None,
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
    """Samples per split and blur level (1..10) of the shards in FOLDER, from manifest.json."""
    _require_folder(folder)
    manifest = read_manifest(folder)
    if manifest is None:  # count from the files themselves; no checksums needed for counting
        manifest = build_manifest(shard_entry(p, checksum=False) for p in list_shard_files(folder))
    if not manifest["shards"]:
        raise ShardError(f"no shards in {folder}")
    table = level_table(manifest)
    click.echo(json.dumps(table.to_dict(), indent=2) if as_json else format_level_table(table))


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


def _require_folder(folder: Path) -> None:
    if not folder.is_dir():
        raise ShardError(f"shard folder not found: {folder}")
