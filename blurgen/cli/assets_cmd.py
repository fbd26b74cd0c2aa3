"""``blurgen assets``: scan ShapeNet, mesh and background folders into manifests; make the demo set.

Thin wrappers over :mod:`blurgen.assets`; the heavy imports happen inside the commands so that
``blurgen --help`` stays quick.
"""

from __future__ import annotations

import time
from pathlib import Path

import click

from blurgen.assets.config import KIND, DemoAssetsConfig
from blurgen.cli.config_options import config_options, out_option

_JOBS_HELP = "Parallel worker processes (joblib); -1 uses every core."


def _check_jobs(jobs: int) -> int:
    if jobs == 0 or jobs < -1:
        raise click.BadParameter("must be -1 (all cores) or >= 1", param_hint="--jobs")
    return jobs


@click.group()
def assets() -> None:
    """Scan ShapeNet, mesh and background folders; make the built-in demo assets."""


@assets.command("scan-shapenet")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="ShapeNetCore v2 folder (taxonomy.json and <synset>/<model_id>/models/...).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest JSON to write.")
@click.option("--top-categories", type=click.IntRange(min=1), default=None,
              help="Keep the K categories with the most textured, non-broken models (paper: 39).")
@click.option("--exclude-synset", "exclude", multiple=True, default=("04401088",), show_default=True,
              help="Synset not to scan (repeatable; default: telephone, as the paper did). 'none' excludes nothing.")
@click.option("--max-faces", type=click.IntRange(min=0), default=200_000, show_default=True,
              help="Flag models with more faces as 'huge mesh'; 0 means no limit.")
@click.option("--jobs", type=int, default=1, show_default=True, help=_JOBS_HELP)
def scan_shapenet_cmd(root: Path, out: Path, top_categories: int | None, exclude: tuple[str, ...],
                      max_faces: int, jobs: int) -> None:
    """Count faces, check textures and flag broken models of a ShapeNetCore v2 tree."""
    from blurgen.assets.shapenet_scan import format_summary, scan_shapenet

    excluded = [] if [e.lower() for e in exclude] == ["none"] else list(exclude)
    scan = scan_shapenet(root, top_categories=top_categories, exclude_synsets=excluded,
                         max_faces=max_faces or None, jobs=_check_jobs(jobs), progress=True)
    scan.manifest.save(out)
    click.echo(format_summary(scan))
    broken = sum(1 for i in scan.manifest.ids() if scan.manifest.problem(i))
    click.echo(f"wrote {out}: {len(scan.manifest)} models in {len(scan.manifest.categories())} categories "
               f"({broken} flagged broken)")


@assets.command("scan-meshes")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of meshes (.obj, .glb, .gltf, .ply) in any layout: <category>/<name>.<ext>, "
                   "or one folder per model as Google Scanned Objects and Objaverse come.")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest JSON to write.")
@click.option("--category", default=None,
              help="One category for every model (a collection without categories); default: the "
                   "first folder below --root.")
@click.option("--license", "license_", default="unknown: see the collection's terms", show_default=True,
              help="Licence recorded for every model.")
@click.option("--max-faces", type=click.IntRange(min=0), default=200_000, show_default=True,
              help="Flag models with more faces as 'huge mesh'; 0 means no limit.")
@click.option("--jobs", type=int, default=1, show_default=True, help=_JOBS_HELP)
def scan_meshes_cmd(root: Path, out: Path, category: str | None, license_: str, max_faces: int,
                    jobs: int) -> None:
    """Count faces, box the vertices, check textures and flag broken models of a mesh folder."""
    from blurgen.assets.mesh_scan import scan_meshes
    from blurgen.assets.shapenet_scan import format_summary

    scan = scan_meshes(root, category=category, max_faces=max_faces or None, license=license_,
                       jobs=_check_jobs(jobs), progress=True)
    scan.manifest.save(out)
    click.echo(format_summary(scan))
    broken = sum(1 for i in scan.manifest.ids() if scan.manifest.problem(i))
    click.echo(f"wrote {out}: {len(scan.manifest)} models in {len(scan.manifest.categories())} categories "
               f"({broken} flagged broken)")


@assets.command("scan-backgrounds")
@click.option("--root", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of background images (searched recursively: jpg, jpeg, png, webp).")
@click.option("--out", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Manifest JSON to write.")
@click.option("--min-width", type=click.IntRange(min=1), default=320, show_default=True,
              help="Flag narrower images as too small.")
@click.option("--min-height", type=click.IntRange(min=1), default=240, show_default=True,
              help="Flag lower images as too small.")
@click.option("--max-distance", type=click.IntRange(0, 63), default=4, show_default=True,
              help="dHash bits within which two images count as (near-)duplicates.")
@click.option("--jobs", type=int, default=1, show_default=True, help=_JOBS_HELP)
def scan_backgrounds_cmd(root: Path, out: Path, min_width: int, min_height: int, max_distance: int,
                         jobs: int) -> None:
    """Read sizes, flag unreadable and too-small images, and group duplicates."""
    from blurgen.assets.backgrounds_scan import format_report, scan_backgrounds

    scan = scan_backgrounds(root, min_width=min_width, min_height=min_height, max_distance=max_distance,
                            jobs=_check_jobs(jobs), progress=True)
    scan.manifest.save(out)
    click.echo(format_report(scan))
    click.echo(f"wrote {out}")


@assets.command("demo")
@config_options(KIND, DemoAssetsConfig)
@out_option("Folder to make the demo set in.")
def demo_cmd(out: Path, config: DemoAssetsConfig) -> None:
    """Make the demo set: textured objects in ShapeNet's layout, landscape backgrounds, manifests."""
    from blurgen.assets.demo import make_demo_assets

    start = time.perf_counter()
    made = make_demo_assets(out, config, progress=True)
    n_objects = config.categories * config.objects_per_category
    click.echo(f"objects:     {made.root / 'objects'} ({n_objects} models in {config.categories} categories)")
    click.echo(f"backgrounds: {made.root / 'backgrounds'} ({config.backgrounds} images)")
    click.echo(f"manifests:   {made.objects}, {made.backgrounds}")
    if made.preview is not None:
        click.echo(f"preview:     {made.preview}")
    click.echo(f"done in {time.perf_counter() - start:.1f} s")
