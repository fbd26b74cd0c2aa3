"""The layout of a published release (``blurgen shards publish``), and how readers find its shards.

A release is a folder a maintainer uploads as it is::

    RELEASE/
      README.md          the dataset card (Hugging Face front matter + sections)
      croissant.json     Croissant JSON-LD: the dataset and every shard as a FileObject
      SHA256SUMS         every other file's sha256, as `sha256sum -c` reads it
      previews/          contact sheets: one per split, one per blur level (render data)
      data/              the shards, named <split>-<set>-<task>-of-<num_tasks>.h5, + manifest.json

The shards live in ``data/`` (the Hugging Face convention: ``data_files`` patterns point there),
so :func:`shard_folder` lets every reader (``verify_dir``, ``ShardDataset``, ``folder_info``,
``blurgen shards stats``) take the release root and look in ``data/``.
"""

from __future__ import annotations

import re
from pathlib import Path

from blurgen.errors import BlurgenError
from blurgen.shards.layout import SHARD_SUFFIX
from blurgen.shards.manifest import MANIFEST_NAME, list_shard_files

DATA_DIR = "data"
CARD_NAME = "README.md"
CROISSANT_NAME = "croissant.json"
SUMS_NAME = "SHA256SUMS"
PREVIEWS_DIR = "previews"

# A set name goes between the split and the task in a release's file names, so it may not hold
# the '-' that separates them (nor anything a URL or a glob would treat specially).
SET_NAME = re.compile(r"^[A-Za-z0-9_]+$")


def shard_folder(path: str | Path) -> Path:
    """The folder that holds the shards of ``path``: ``path`` itself, or ``path/data`` when
    ``path`` is a release root (no shards or manifest of its own, a manifest in ``data/``)."""
    path = Path(path)
    data = path / DATA_DIR
    if (path.is_dir() and not (path / MANIFEST_NAME).is_file() and not list_shard_files(path)
            and (data / MANIFEST_NAME).is_file()):
        return data
    return path


def release_shard_name(split: str, set_name: str, task_index: int, num_tasks: int) -> str:
    """``train-retrieval-00003-of-00016.h5``: a shard's name in a release's ``data/``.

    The split comes first so that the Hugging Face pattern ``data/<split>-*.h5`` selects a
    split; the set keeps the shards of two jobs with the same split apart.
    """
    if not SET_NAME.match(set_name):
        raise BlurgenError(f"set name must be letters, digits or '_', got {set_name!r}")
    return f"{split}-{set_name}-{task_index:05d}-of-{num_tasks:05d}{SHARD_SUFFIX}"


def split_pattern(split: str) -> str:
    """The ``data_files`` path pattern of one split (relative to the release root)."""
    return f"{DATA_DIR}/{split}-*{SHARD_SUFFIX}"


def new_output_folder(out: str | Path, what: str) -> Path:
    """``out`` as a Path when it does not exist or is an empty folder; one line otherwise (a
    release or subset is never written over another)."""
    from blurgen.train.report import refuse_existing  # the rule every report folder follows

    try:
        return refuse_existing(out)
    except BlurgenError:
        raise BlurgenError(f"{out} already exists and is not empty: give a new --out folder "
                           f"(a {what} is never written over another)") from None
