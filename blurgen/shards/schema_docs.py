"""The field tables of ``docs/shard-format.md``, generated from the schema declarations.

Each table sits between two marker comments naming its schema; :func:`update_docs` replaces
what is between them with :func:`schema_table` of the declaration, so the docs cannot drift from
:mod:`blurgen.shards.schemas` (``blurgen shards schema --update-docs docs/shard-format.md``
rewrites them; a test fails when they differ).
"""

from __future__ import annotations

import re
from typing import Iterable

from blurgen.errors import ShardError
from blurgen.shards.schema import Schema, get_schema

_BEGIN = "<!-- schema-table {name}: generated from blurgen/shards/schemas.py by " \
         "`blurgen shards schema --update-docs`; edit the declaration, not this table -->"
_END = "<!-- end schema-table {name} -->"
_SECTION = re.compile(r"<!-- schema-table (?P<name>\S+): .*?-->\n.*?<!-- end schema-table (?P=name) -->",
                      re.DOTALL)


def schema_table(schema: Schema) -> str:
    """The Markdown table of a schema's fields, one row per field."""
    rows = ["| field | dtype | shape per sample | unit / convention | meaning |", "|---|---|---|---|---|"]
    for f in schema.fields:
        name = f"`{f.name}`" + (" (optional)" if f.optional else "")
        cells = (name, f.dtype, f.shape_text, f.unit, f.doc)
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows)


def table_section(schema: Schema) -> str:
    """A schema's table between its markers, as it stands in the docs."""
    return "\n".join([_BEGIN.format(name=schema.name), schema_table(schema), _END.format(name=schema.name)])


def update_docs(text: str, required: Iterable[Schema] = ()) -> str:
    """``text`` with every marked table regenerated from its declaration.

    ShardError when a marker names an undeclared schema or a ``required`` schema has no table,
    so a new generator's schema cannot be left out of the docs.
    """
    found: set[str] = set()

    def regenerate(m: re.Match[str]) -> str:
        found.add(m["name"])
        return table_section(get_schema(m["name"]))

    updated = _SECTION.sub(regenerate, text)
    missing = [s.name for s in required if s.name not in found]
    if missing:
        raise ShardError(f"no generated table for schema {missing[0]}: add the line "
                         f"{_BEGIN.format(name=missing[0])!r} and {_END.format(name=missing[0])!r}")
    return updated
