"""The blur-type registry of ``blurgen composite``: one entry per blur type, in one place.

An entry names a type, the module that implements it, and the flags the compositing reads:

- ``dilated_support``: the parameters depend on the instance's shape (zoom's centre and radius,
  rolling's centre row), so they are drawn for the feathered support (the mask dilated by the
  feather radius), which is what gets blurred.
- ``band``: the type works in a band around the boundary (edge ring): the compositing blends
  the blur with the input by the module's ``band(inside, params)`` weight.

The type's module (imported on first use, so this registry stays free of numpy and OpenCV and
the config can take its list of types from here cheaply) defines:

- ``draw(rng, extent_px, alpha, ranges) -> dict``: the type's own parameters, drawn from ``rng``
  in a fixed order (``ranges``: the config's ``blur`` section, where the ranges are checked);
- ``apply(params, fg, alpha, bbox) -> BlurResult``: the operator (see ``blurs.base``);
- optionally ``path(params)``: the motion path of a space-invariant type (its PSF),
  ``reach(params)``: how far the blur carries content when that is more than ``extent_px``,
  ``in_window(params, x0, y0)``: the parameters in a window's coordinates when some are
  absolute positions, ``source_extent(params, shape)``: the motion extent of the content at
  each pixel of the sharp image when it is not ``extent_px`` everywhere (zoom), and, for
  ``band`` types, ``band(inside, params)``.

Adding a type: write ``blurs/<name>.py`` with those functions and add one ``register`` line
below (docs/composite.md, "Adding a blur type").
"""

from __future__ import annotations

import dataclasses
import importlib
from types import ModuleType

from blurgen.errors import BlurgenError


@dataclasses.dataclass(frozen=True)
class BlurType:
    """One registered blur type; ``impl`` is its module (draw, apply and the optional hooks)."""

    name: str
    module: str
    dilated_support: bool = False
    band: bool = False

    @property
    def impl(self) -> ModuleType:
        return importlib.import_module(self.module)


REGISTRY: dict[str, BlurType] = {}


def register(entry: BlurType) -> BlurType:
    """Add ``entry`` to the registry (names are unique)."""
    if entry.name in REGISTRY:
        raise ValueError(f"blur type {entry.name!r} is registered twice")
    REGISTRY[entry.name] = entry
    return entry


def blur_type(name: object) -> BlurType:
    """The registry entry of ``name``; a user error names the known types."""
    entry = REGISTRY.get(name) if isinstance(name, str) else None
    if entry is None:
        raise BlurgenError(f"unknown blur type {name!r}; choose one of {', '.join(REGISTRY)}")
    return entry


# The registration order is the order of BLUR_TYPES, which random type draws index into:
# append new types at the end, so that existing configs keep drawing the same samples.
_HERE = __name__
register(BlurType("straight", f"{_HERE}.straight"))
register(BlurType("curved", f"{_HERE}.curved"))
register(BlurType("zoom_rotation", f"{_HERE}.zoom_rotation", dilated_support=True))
register(BlurType("random_walk", f"{_HERE}.random_walk"))
register(BlurType("edge_ring", f"{_HERE}.edge_ring", band=True))
register(BlurType("rolling", f"{_HERE}.rolling", dilated_support=True))

BLUR_TYPES: tuple[str, ...] = tuple(REGISTRY)
