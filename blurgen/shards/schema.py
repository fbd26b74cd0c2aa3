"""What a shard schema is: a declared table of fields, and the checks against it.

A schema (``blurgen.render/1``) says which datasets a shard holds: for each field its name,
dtype, per-sample shape (``"H"`` and ``"W"`` where the image size varies with the config), unit
or convention, a one-line doc, and whether it is optional (present in every shard of a job or in
none, e.g. render's flow). The declarations themselves live in :mod:`blurgen.shards.schemas`;
this module holds the types, the registry the writer and readers look names up in, and the
checks: :meth:`Schema.check_sample` (the writer, before anything is written) and
:meth:`Schema.check_datasets` (a finished file, ``verify``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

import numpy as np

from blurgen.errors import ShardError

STR = "str"  # the dtype of a text field: a Python str in a sample, fixed-length UTF-8 on disk
SYMBOLIC_DIMS = ("H", "W")  # image height and width: fixed per shard by its first sample

Dim = int | str
Dims = dict[str, int]


@dataclass(frozen=True)
class Field:
    """One per-sample dataset of a schema. ``shape`` is per sample (the sample axis comes first
    on disk); ``dtype`` is a NumPy dtype name or :data:`STR`."""

    name: str
    dtype: str
    shape: tuple[Dim, ...]
    unit: str
    doc: str
    optional: bool = False

    def __post_init__(self) -> None:
        if self.dtype != STR:
            np.dtype(self.dtype)  # a typo in a declaration fails at import, not at write time
        bad = [d for d in self.shape if isinstance(d, str) and d not in SYMBOLIC_DIMS]
        if bad:
            raise ValueError(f"field {self.name!r}: symbolic dimension {bad[0]!r} is not one of {SYMBOLIC_DIMS}")
        if self.dtype == STR and self.shape:
            raise ValueError(f"field {self.name!r}: a str field is one string per sample (shape ())")

    @property
    def shape_text(self) -> str:
        """``(H, W, 3)``, ``(4,)`` or ``scalar``."""
        if not self.shape:
            return "scalar"
        return f"({', '.join(map(str, self.shape))}{',' if len(self.shape) == 1 else ''})"

    def describe(self) -> str:
        """``uint8 (H, W, 3)``, ``float32 scalar``, ``str``."""
        return STR if self.dtype == STR else f"{self.dtype} {self.shape_text}"


@dataclass(frozen=True)
class Schema:
    """A named, versioned table of fields. ``extra_fields`` lets samples carry fields the table
    does not declare (fixed by the shard's first sample); the generators' schemas are closed."""

    name: str
    doc: str
    fields: tuple[Field, ...]
    extra_fields: bool = False

    def __post_init__(self) -> None:
        names = [f.name for f in self.fields]
        if len(set(names)) != len(names):
            raise ValueError(f"schema {self.name!r} declares a field twice")

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    def has(self, name: str) -> bool:
        """Whether the schema declares ``name`` (required or optional)."""
        return any(f.name == name for f in self.fields)

    def field(self, name: str) -> Field:
        for f in self.fields:
            if f.name == name:
                return f
        raise ShardError(f"schema {self.name} has no field '{name}' (fields: {', '.join(self.names)})")

    def holding(self, present: Iterable[str]) -> Schema:
        """This schema narrowed to a folder's shards: the optional fields they lack are left out,
        so ``has`` answers for the folder (render without ``images.flow`` has no ``flow_fwd``)."""
        present = set(present)
        return Schema(self.name, self.doc, tuple(f for f in self.fields if not f.optional or f.name in present),
                      self.extra_fields)

    def check_sample(self, values: Mapping[str, np.ndarray | str], dims: Dims, where: str) -> Dims:
        """Refuse a sample whose fields disagree with the declaration; returns ``dims`` with the
        symbolic dimensions the sample binds (the first sample of a shard binds H and W)."""
        for f in self.fields:
            if not f.optional and f.name not in values:
                raise ShardError(f"{where}: field '{f.name}' is missing (required by schema {self.name})")
        bound = dict(dims)
        for key, value in values.items():
            f = next((f for f in self.fields if f.name == key), None)
            if f is None:
                if self.extra_fields:
                    continue
                raise ShardError(f"{where}: field '{key}' is not in schema {self.name} "
                                 f"(fields: {', '.join(self.names)})")
            shape, dtype = ((), STR) if isinstance(value, str) else (value.shape, value.dtype.name)
            problem = _mismatch(f, shape, dtype, bound)
            if problem:
                raise ShardError(f"{where}: field '{key}' {problem}, schema {self.name} declares {f.describe()}")
        return bound

    def check_datasets(self, stored: Mapping[str, tuple[tuple[int, ...], str]]) -> list[str]:
        """Problems of a finished shard's datasets (name -> per-sample shape, dtype name or
        :data:`STR`) against the declaration; empty when they agree. A shard without samples
        may hold no datasets at all (nothing fixed their shapes)."""
        problems: list[str] = []
        dims: Dims = {}
        for f in self.fields:
            if f.name not in stored:
                if not f.optional and stored:
                    problems.append(f"field '{f.name}' is missing (required by schema {self.name})")
                continue
            problem = _mismatch(f, *stored[f.name], dims)
            if problem:
                problems.append(f"field '{f.name}' {problem}, schema {self.name} declares {f.describe()}")
        if not self.extra_fields:
            problems += [f"dataset '{name}' is not in schema {self.name}" for name in stored if not self.has(name)]
        return problems


def _mismatch(f: Field, shape: tuple[int, ...], dtype: str, dims: Dims) -> str | None:
    """What is wrong with a value of ``shape`` and ``dtype`` (a dtype name or :data:`STR`) for
    field ``f``, binding H and W into ``dims``; None when it fits."""
    if f.dtype == STR or dtype == STR:
        if f.dtype == dtype:
            return None
        return "is a str, not an array" if dtype == STR else f"is an array of {dtype}, not a str"
    if dtype != f.dtype:
        return f"has dtype {dtype}"
    if len(shape) != len(f.shape):
        return f"has shape {shape}"
    for got, want in zip(shape, f.shape):
        if isinstance(want, str):
            if dims.setdefault(want, got) != got:
                return f"has shape {shape} but {want} is {dims[want]} in this shard"
        elif got != want:
            return f"has shape {shape}"
    return None


_REGISTRY: dict[str, Schema] = {}


def register_schema(schema: Schema) -> Schema:
    """Declare a schema so writers accept its name; registering the same declaration twice is
    harmless, a different one under a taken name is an error (names are versioned: add ``/2``)."""
    known = _REGISTRY.get(schema.name)
    if known is not None and known != schema:
        raise ValueError(f"schema {schema.name} is already declared differently")
    if "/" not in schema.name:
        raise ValueError(f"schema name must look like 'blurgen.render/1', got {schema.name!r}")
    _REGISTRY[schema.name] = schema
    return schema


def get_schema(name: str) -> Schema:
    """The declaration of ``name``; ShardError naming the declared ones when there is none."""
    schema = _REGISTRY.get(name)
    if schema is None:
        raise ShardError(f"unknown shard schema {name!r} (declared: {', '.join(sorted(_REGISTRY))}); "
                         "declare it with blurgen.shards.register_schema")
    return schema


def is_declared(name: str) -> bool:
    return name in _REGISTRY


def declared_schemas() -> list[Schema]:
    """Every registered schema, by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]
