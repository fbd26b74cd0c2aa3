"""Declaring config schemas: dataclasses whose fields carry their documentation and limits.

A config section is a frozen dataclass; each field is made with :func:`option`, which records a
one-line ``doc`` (printed as a comment by ``--print-config`` and in ``docs/``) and the values
allowed (``choices``, ``min``, ``max``). Nested sections are fields whose type is another
config dataclass. Validation (in :mod:`blurgen.config.loader`) reads these records, so the
documentation and the checks cannot drift apart. A field marked ``run_only`` says how a job runs,
not what it makes (a preview, a batch size, a device): a re-run of a job may change it
(:func:`run_only_keys`, read by the farm contract's refusal of another job's folder).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Sequence


def option(
    default: Any = dataclasses.MISSING,
    doc: str = "",
    *,
    choices: Sequence[Any] | None = None,
    min: float | None = None,  # noqa: A002 - reads naturally at the call site
    max: float | None = None,  # noqa: A002
    min_len: int | None = None,
    span: bool = False,
    run_only: bool = False,
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A documented config field. ``min``/``max`` apply to numbers and to list items.

    ``span``: the value is a ``[min, max]`` pair of numbers with min <= max (a sampling range).
    ``run_only``: the value changes how a job runs, never the samples it writes.
    """
    if not doc:
        raise ValueError("every config field needs a doc string")
    metadata = {"doc": doc, "choices": tuple(choices) if choices else None,
                "min": min, "max": max, "min_len": min_len, "span": span,
                "run_only": run_only}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type) -> type:
    """Class decorator for a config section: a frozen, keyword-only dataclass."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)


def run_only_keys(schema: type, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The dotted paths (as tuples) of every ``run_only`` field of ``schema`` and its sections."""
    hints = typing.get_type_hints(schema)  # the annotations are strings (postponed evaluation)
    keys: list[tuple[str, ...]] = []
    for f in dataclasses.fields(schema):
        if f.metadata.get("run_only"):
            keys.append((*prefix, f.name))
        elif dataclasses.is_dataclass(hints[f.name]):
            keys += run_only_keys(hints[f.name], (*prefix, f.name))
    return keys
