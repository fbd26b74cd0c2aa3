"""HDF5 shards: the contract between the generators, the trainer and publishers.

One file per farm task, written atomically by :class:`ShardWriter`, listed with its sha256 in
``manifest.json``, read by :class:`ShardDataset`, checked by :func:`verify_dir`. What each
generator's shards hold is declared in :mod:`blurgen.shards.schemas`; ``folder_schema`` says
which schema and fields a folder has. The format is described in ``docs/shard-format.md``.
"""

from blurgen.shards import schemas  # the generators' declarations, registered on import
from blurgen.shards.info import FolderInfo, folder_info, folder_schema, format_info
from blurgen.shards.layout import parse_shard_filename, shard_filename
from blurgen.shards.manifest import (
    MANIFEST_NAME,
    read_manifest,
    rebuild_manifest,
    shard_entry,
    update_manifest,
)
from blurgen.shards.reader import FieldSpec, ShardDataset, shard_fields
from blurgen.shards.schema import Field, Schema, declared_schemas, get_schema, register_schema
from blurgen.shards.stats import LevelTable, format_level_table, level_table
from blurgen.shards.verify import VerifyReport, shard_is_complete, verify_dir, verify_shard
from blurgen.shards.writer import ShardWriter

__all__ = [
    "MANIFEST_NAME", "Field", "FieldSpec", "FolderInfo", "LevelTable", "Schema", "ShardDataset",
    "ShardWriter", "VerifyReport", "declared_schemas", "folder_info", "folder_schema", "format_info",
    "format_level_table", "get_schema", "level_table", "parse_shard_filename", "read_manifest",
    "rebuild_manifest", "register_schema", "schemas", "shard_entry", "shard_fields", "shard_filename",
    "shard_is_complete", "update_manifest", "verify_dir", "verify_shard",
]
