"""Declaring config schemas: dataclasses whose fields carry their documentation and limits.

A config section is a frozen dataclass; each field is made with :func:`option`, which records a
one-line ``doc`` (printed as a comment by ``--print-config`` and in ``docs/``) and the values
allowed (``choices``, ``min``, ``max``). Nested sections are fields whose type is another
config dataclass. Validation (in :mod:`blurgen.config.loader`) reads these records, so the
documentation and the checks cannot drift apart.
"""

from __future__ import annotations

import dataclasses
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
    default_factory: Callable[[], Any] | None = None,
) -> Any:
    """A documented config field. ``min``/``max`` apply to numbers and to list items.

    ``span``: the value is a ``[min, max]`` pair of numbers with min <= max (a sampling range).
    """
    if not doc:
        raise ValueError("every config field needs a doc string")
    metadata = {"doc": doc, "choices": tuple(choices) if choices else None,
                "min": min, "max": max, "min_len": min_len, "span": span}
    if default_factory is not None:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def section(cls: type) -> type:
    """Class decorator for a config section: a frozen, keyword-only dataclass."""
    return dataclasses.dataclass(frozen=True, kw_only=True)(cls)
