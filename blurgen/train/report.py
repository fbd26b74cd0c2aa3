"""Writing an evaluation report: a folder built whole or not at all, JSON, Markdown, saved outputs.

DESIGN.md (Trainer): ``evaluate`` ends in a report of JSON (every number), Markdown (the paper's
tables), PNG and the raw outputs (descriptors, masks, flows) that let anyone re-score a model.
Every task's evaluation (retrieval now; blur segmentation and flow next) writes through these
helpers so that the reports look and behave alike:

- :func:`staged_folder`: the report is built in a hidden sibling folder and renamed to OUT only
  when complete, so a crash never leaves a half report that looks whole; an existing non-empty
  OUT is refused (a report is never mixed with an older one).
- :func:`jsonable` / :func:`write_json`: NumPy values to plain JSON; NaN (an undefined mean,
  e.g. mAP over no query) becomes ``null``, since JSON has no NaN.
- :func:`markdown_table` / :func:`percent`: GitHub Markdown tables, metrics printed x 100 with
  two decimals as the papers print them.
- :func:`write_h5_groups`: named groups of equal-length columns (strings as UTF-8) in one HDF5
  file, readable with plain h5py.
- :func:`provenance`: what produced the report (blurgen version, resolved config, input paths).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import shutil
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import h5py
import numpy as np

from blurgen import __version__
from blurgen.atomic import atomic_write_text, temporary_name
from blurgen.errors import BlurgenError

MISSING = "–"  # what a table cell shows for an undefined value (NaN / None)
# report.md's line when the shards scored are (part of) the run's training split
TRAINING_DATA_WARNING = ("- **warning: these shards are (part of) the run's training data**: the numbers measure "
                         "fit, not how the model does on unseen images.")


def refuse_existing(out: str | Path) -> Path:
    """``out`` as a Path; one line if it exists and is not an empty folder."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BlurgenError(f"{out} already exists and is not empty: give a new --out folder "
                           "(a report is never written over another)")
    return out


@contextlib.contextmanager
def staged_folder(out: str | Path) -> Iterator[Path]:
    """Yield a hidden sibling folder to build the report in; rename it to ``out`` on success.

    Refuses an existing non-empty ``out`` (one line); an existing empty folder is replaced. On an
    error the staging folder is removed and ``out`` is left as it was.
    """
    out = refuse_existing(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = temporary_name(out)
    staging.mkdir()
    try:
        yield staging
        if out.is_dir():
            out.rmdir()  # empty (checked above): rename cannot replace a folder on every OS
        os.replace(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def jsonable(value: Any) -> Any:
    """Plain JSON values: NumPy scalars and arrays to Python ones, NaN/inf to None, paths to
    strings, dataclasses to dicts, mapping keys to strings (JSON has only string keys)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return jsonable({f.name: getattr(value, f.name) for f in dataclasses.fields(value)})
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json(path: str | Path, data: Any) -> Path:
    """Write ``jsonable(data)`` as indented JSON with sorted keys (stable bytes for equal data)."""
    text = json.dumps(jsonable(data), indent=2, sort_keys=True, allow_nan=False, ensure_ascii=False)
    return atomic_write_text(path, text + "\n")


def percent(value: float | None, digits: int = 2) -> str:
    """A metric in [0, 1] printed x 100 (the papers' convention); ``–`` when undefined."""
    if value is None or not math.isfinite(float(value)):
        return MISSING
    return f"{100.0 * float(value):.{digits}f}"


def markdown_table(header: Sequence[Any], rows: Sequence[Sequence[Any]]) -> str:
    """A GitHub Markdown table; the first column left-aligned, the others right-aligned (numbers)."""
    width = len(header)
    for row in rows:
        if len(row) != width:
            raise ValueError(f"a row has {len(row)} cells for {width} columns")
    align = ["---"] + ["---:"] * (width - 1)
    lines = [header, align, *rows]
    return "\n".join("| " + " | ".join(str(c) for c in line) + " |" for line in lines) + "\n"


def write_h5_groups(path: str | Path, groups: Mapping[str, Mapping[str, np.ndarray]],
                    attrs: Mapping[str, Any] | None = None) -> Path:
    """One HDF5 file with a group per name, each holding equal-length columns.

    String columns are stored as variable-length UTF-8 (read them with ``ds.asstr()[...]``),
    numeric ones as they are, gzip-compressed. ``attrs`` (plain values, dicts as JSON text) go
    on the root.
    """
    path = Path(path)
    with h5py.File(path, "w") as f:
        for name, columns in groups.items():
            lengths = {len(v) for v in columns.values()}
            if len(lengths) > 1:
                raise ValueError(f"group {name!r}: columns of different lengths {sorted(lengths)}")
            group = f.create_group(name)
            for column, values in columns.items():
                values = np.asarray(values)
                if values.dtype.kind in "UO":
                    group.create_dataset(column, data=values.astype(str).astype(object),
                                         dtype=h5py.string_dtype("utf-8"))
                else:
                    group.create_dataset(column, data=values, compression="gzip" if values.size else None)
        for key, value in (attrs or {}).items():
            value = jsonable(value)
            f.attrs[key] = json.dumps(value) if isinstance(value, (dict, list)) or value is None else value
    return path


def provenance(config_json: str, **inputs: str | Path | None) -> dict[str, Any]:
    """What produced a report: the blurgen version, the resolved config (from its JSON) and the
    inputs as absolute paths (None stays None)."""
    return {"blurgen_version": __version__, "config": json.loads(config_json),
            **{name: (str(Path(p).resolve()) if p is not None else None) for name, p in inputs.items()}}
