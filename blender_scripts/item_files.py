"""Writing an item's outputs so that the parent sees no file or the whole file.

The parent reads an item's ``.npz`` (or its error report) as soon as the protocol line says it
is done, while this process renders the next item; a temporary name in the same folder and one
rename make that safe. Standard library and numpy only.
"""

from __future__ import annotations

import json
import os

import numpy as np


def _temporary_name(path: str) -> str:
    """A hidden name beside ``path`` (same folder: the rename is atomic); the folder is made."""
    folder, name = os.path.split(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f".{name}.{os.getpid()}.tmp")


def write_json_atomic(path: str, data: dict) -> None:
    """Write JSON so that a reader sees no file or the whole file."""
    tmp = _temporary_name(path)
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh)
    os.replace(tmp, path)


def write_npz_atomic(path: str, arrays: dict) -> None:
    """``np.savez`` (uncompressed) so that a reader sees no file or the whole file."""
    tmp = _temporary_name(path)
    try:
        with open(tmp, "wb") as fh:  # a file object: np.savez would append ".npz" to a name
            np.savez(fh, **arrays)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
