"""Writing files so that a reader sees the old file or the whole new one, never a part.

Everything blurgen publishes (shards, manifests, asset trees) is written under a temporary name
in its final folder and renamed into place; a crash leaves only a dot-named ``.tmp`` file.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def temporary_name(path: Path) -> Path:
    """A hidden, unique temporary name beside ``path`` (same folder, so the rename is atomic)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")


def atomic_write_text(path: str | Path, text: str, *, durable: bool = True) -> Path:
    """Write ``text`` to ``path`` atomically; ``durable`` also fsyncs the file and its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = temporary_name(path)
    try:
        # A plain exclusive open (not mkstemp, whose files are 0600) so the file gets the umask's mode.
        with open(tmp, "x", encoding="utf-8", newline="\n") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if durable:
        fsync_dir(path.parent)
    return path


def fsync_dir(folder: str | Path) -> None:
    """Make a rename in ``folder`` durable (the directory entry is data too)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
