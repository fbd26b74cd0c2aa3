"""What a training run leaves for people: ``RUN/metrics.jsonl``, PNG curves, TensorBoard events.

Every record is one JSON line ``{"kind": "step"|"epoch", "epoch", "step", ...values}``, appended
and flushed as it happens, so a killed run's log is readable up to its last step. On resume the
lines past the checkpoint being resumed are dropped first, so the log of a resumed run is the
log of a run that was never interrupted. TensorBoard events are written too when the
``tensorboard`` package is installed (optional: nothing depends on it).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from blurgen.viz.plot import write_line_chart

METRICS = "metrics.jsonl"


class RunLog:
    """The log of one run, written by the main rank only (others get a silent one)."""

    def __init__(self, run_dir: Path, *, enabled: bool = True, resume_at: int | None = None) -> None:
        self.run_dir = Path(run_dir)
        self.enabled = enabled
        self.path = self.run_dir / METRICS
        self._tb = None
        if not enabled:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        kept = [r for r in read_metrics(self.path) if r["global_step"] <= resume_at] if resume_at is not None else []
        self.path.write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in kept))
        try:
            from torch.utils.tensorboard import SummaryWriter  # needs the tensorboard package
        except ImportError:
            return
        self._tb = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=resume_at)

    def write(self, kind: str, epoch: int, global_step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"kind": kind, "epoch": epoch, "global_step": global_step, **values}
        with open(self.path, "a") as fh:
            fh.write(json.dumps(record, sort_keys=True) + "\n")
        if self._tb is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(f"{kind}/{key}", value, global_step)
            self._tb.flush()

    def plot(self) -> list[Path]:
        """``loss.png`` (training losses per step) and ``validation.png`` (epoch metrics)."""
        if not self.enabled:
            return []
        records = read_metrics(self.path)
        written = []
        for kind, name, xlabel in (("step", "loss.png", "step"), ("epoch", "validation.png", "epoch")):
            rows = [r for r in records if r["kind"] == kind]
            keys = sorted({k for r in rows for k, v in r.items() if isinstance(v, (int, float))
                           and k not in ("epoch", "global_step", "images_per_s", "lr")
                           and not k.startswith("data_")})  # counts about the data, not curves
            if not rows or not keys:
                continue
            x = "global_step" if kind == "step" else "epoch"
            series = {k: ([r[x] for r in rows if k in r], [r[k] for r in rows if k in r]) for k in keys}
            title = "training losses" if kind == "step" else "validation metrics"
            written.append(write_line_chart(self.run_dir / name, series, title=title, xlabel=xlabel,
                                            ylabel="value"))
        return written

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()


def read_metrics(path: Path) -> list[dict[str, Any]]:
    """The records of a ``metrics.jsonl``; a last line cut by a kill is left out."""
    if not Path(path).is_file():
        return []
    records = []
    for line in Path(path).read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            break  # a line cut short by a killed process: nothing after it was written
    return records
