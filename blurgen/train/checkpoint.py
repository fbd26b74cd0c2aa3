"""Checkpoints: written atomically, read back safely, refused when they belong to another task.

A checkpoint is one ``torch.save`` file holding only tensors and plain values (so it loads with
``weights_only=True``: a checkpoint is data, never code): the task's name, the resolved config
as JSON, where the run stands (epoch, step within the epoch, global step), where its training
and validation shards came from (``sources``), the model, the optimizer and the gradient
scaler. It is written to a temporary name beside its destination and renamed, so a run killed
at any instant leaves either the old checkpoint or the new one.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from blurgen.errors import BlurgenError

LAST = "last.pt"      # the newest checkpoint of a run: what --resume continues from
FINAL = "final.pt"    # the model at the end of training: what evaluate reads from a run


def save_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """Write ``state`` to ``path`` atomically (temporary name in the same folder, then rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: Path, task: str) -> dict[str, Any]:
    """Read a checkpoint of ``task``; one-line errors for a missing, unreadable or foreign file."""
    path = Path(path)
    if not path.is_file():
        raise BlurgenError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for truncated or foreign files
        raise BlurgenError(f"{path} is not a readable blurgen checkpoint ({type(exc).__name__}: "
                           f"{str(exc).splitlines()[0] if str(exc) else ''})") from None
    if not isinstance(state, dict) or "task" not in state or "model" not in state:
        raise BlurgenError(f"{path} is not a blurgen checkpoint (no task and model in it)")
    if state["task"] != task:
        raise BlurgenError(f"{path} is a checkpoint of the {state['task']!r} task, not {task!r}: "
                           f"use blurgen evaluate {state['task']}, or give a {task} checkpoint")
    return state


def load_weights(model: torch.nn.Module, weights: dict[str, Any]) -> torch.nn.Module:
    """``model`` with a checkpoint's ``weights``; one line when they do not fit it (a checkpoint
    whose weights do not fit its own config: edited, or from another blurgen version)."""
    try:
        model.load_state_dict(weights)
    except RuntimeError as exc:
        raise BlurgenError(f"the checkpoint's model does not match its config: {str(exc).splitlines()[0]}") from None
    return model


def load_weights_file(module: torch.nn.Module, path: str | Path, *, option: str, part: str,
                      hint: str = "") -> None:
    """A user's pre-trained state dict from ``path`` into ``module`` (a backbone or an encoder),
    ``fc.*`` ignored (a classifier's head the module does not have); one line naming the config
    ``option`` when the file is missing, not a state dict, or does not fit the ``part``.

    Read with ``weights_only=True``: a state dict is tensors, and nothing in the file may run code.
    """
    path = Path(path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise BlurgenError(f"{option}: no such file: {path}") from None
    except Exception as error:  # unpickling errors have no common base class
        raise BlurgenError(f"{option}: {path} is not a readable torch state dict "
                           f"({str(error).splitlines()[0][:160]})") from None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise BlurgenError(f"{option}: {path} is not a state dict (a mapping of names to tensors)")
    state = {key: value for key, value in state.items() if not key.startswith("fc.")}
    try:
        # nn.Module's own method, strict=False only to word the error here: smp's encoders
        # override load_state_dict to drop fc keys, torchvision's ResNet keeps an fc to leave out
        result = torch.nn.Module.load_state_dict(module, state, strict=False)
    except RuntimeError as error:  # shape mismatches: another architecture's weights
        raise BlurgenError(f"{option}: {path} does not fit the {part}: {' '.join(str(error).split())[:240]}") from None
    missing = [key for key in result.missing_keys if not key.startswith("fc.")]
    if missing or result.unexpected_keys:
        raise BlurgenError(f"{option}: {path} does not fit the {part}: missing {key_list(missing)}, "
                           f"unexpected {key_list(result.unexpected_keys)}{hint}")


def key_list(keys: list[str], most: int = 3) -> str:
    """A short, readable list of state-dict keys for an error line."""
    if not keys:
        return "none"
    more = f" and {len(keys) - most} more" if len(keys) > most else ""
    return ", ".join(keys[:most]) + more


def run_checkpoint(run_dir: Path) -> Path:
    """The checkpoint ``evaluate --run RUN`` reads: the final model, else the last checkpoint."""
    for name in (FINAL, LAST):
        if (Path(run_dir) / "checkpoints" / name).is_file():
            return Path(run_dir) / "checkpoints" / name
    raise BlurgenError(f"{run_dir} has no checkpoints/{FINAL} or checkpoints/{LAST}: is it a blurgen train --out folder?")
