"""The options of ``blurgen shards publish``: what the card and the Croissant file say about a
release, and how the release is built. ``--config FILE`` gives them as YAML; the command's own
options (``--name``, ``--license``, ...) override the file."""

from __future__ import annotations

from blurgen.config.schema import option, section

KIND = "publish"


@section
class PreviewSection:
    count: int = option(16, "samples on each contact sheet", min=1)
    cols: int = option(4, "samples per row of a contact sheet", min=1)
    tile_width: int = option(200, "width of each sample's image on a sheet, pixels", min=32)


@section
class PublishConfig:
    """What a release says about itself. Nothing here depends on the time of publishing: the
    same inputs and values give the same bytes."""

    name: str | None = option(None, "the dataset's name (the card's pretty_name, Croissant's name); "
                                    "null: the set names joined by '+'")
    license: str | None = option(None, "SPDX id of the release's licence (e.g. CC-BY-4.0); required, "
                                       "here or with --license")
    creator: str | None = option(None, "who publishes the data (a person or an organisation)")
    url: str | None = option(None, "where the release will live (its landing page)")
    description: str | None = option(None, "one paragraph for the card's summary; null: a description "
                                           "made from the generator and the counts")
    version: str = option("1.0.0", "the release's version")
    date_published: str | None = option(None, "publication date, ISO 8601 (2026-12-01); null: no date, "
                                              "so that a re-run gives the same bytes")
    tags: tuple[str, ...] = option((), "tags added to the card's front matter beside blurgen's own")
    link: bool = option(True, "hard-link the shards into the release where the file system allows "
                              "(no copy; both names share one file), else copy; false: always copy")
    preview: PreviewSection = option(doc="the contact sheets in previews/", default_factory=PreviewSection)
