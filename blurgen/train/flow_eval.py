"""``blurgen evaluate flow``: the flow-from-blur paper's evaluation and its report.

Protocol (paper, "Quantitative evaluation"; definitions in docs/train-flow.md): every image of
the chosen split (``test`` by default) of a flow-pairs or flow render folder is cropped as in
training (``data.crop``; none: the whole image, padded to the network's multiple and the
prediction cropped back), the network predicts one flow, and per image

- ``epe_fwd`` / ``epe_bwd``: the mean end-point error against the first -> last / last -> first
  flow over that direction's valid pixels;
- ``epe_min = min(epe_fwd, epe_bwd)`` (one blurred image cannot tell which way time ran), and
  the direction it took (forward on ties);
- ``acc_1``, ``acc_3``, ``acc_5``: the share of valid pixels of that direction whose error is
  below 1, 3, 5 px.

The report gives each metric's mean over the images (an image with no valid pixel is left out
of that mean) and what computed the ground truth (``exact``, or the estimator of a video job).

The report folder (:mod:`blurgen.train.report`, built whole then renamed): ``report.json`` (every
number, the resolved config, the checkpoint and inputs), ``report.md`` (a table), ``flows.h5``
(every predicted flow with its sample id and per-image scores, to re-score) and ``flows.png``
(blurred image, true flow and predicted flow in the Middlebury colours, for the first images).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from blurgen.config import build
from blurgen.errors import BlurgenError
from blurgen.flow.metrics import accuracy, direction_masks, epe
from blurgen.shards import ShardDataset
from blurgen.train.checkpoint import load_checkpoint, load_weights
from blurgen.train.data import shards_of
from blurgen.train.distributed import resolve_device
from blurgen.train.flow import check_crop_fits, flow_sources, flow_split_files, predict_flows
from blurgen.train.flow_config import TASK, FlowConfig, check_flow_config
from blurgen.train.flow_model import BlurFlowNet
from blurgen.train.report import (TRAINING_DATA_WARNING, markdown_table, percent, provenance, refuse_existing,
                                  staged_folder, write_h5_groups, write_json)
from blurgen.viz.flow_colors import flow_to_rgb
from blurgen.viz.sheet import draw_label, fit_width, hstack, tile_grid, write_png

THRESHOLDS = (1.0, 3.0, 5.0)  # px: the accuracies acc_1, acc_3, acc_5
METRICS = ("epe_min", "epe_fwd", "epe_bwd", *(f"acc_{int(t)}" for t in THRESHOLDS))
FORWARD, BACKWARD = "forward", "backward"
SHOWN = 6         # images in flows.png: the split's first ones (chosen by the data, never the model)
TILE_WIDTH = 192  # px: each picture of flows.png is scaled to this width


def score_image(pred: np.ndarray, flow_fwd: np.ndarray, flow_bwd: np.ndarray,
                flow_valid: np.ndarray | None) -> dict[str, Any]:
    """One image's scores (see the module doc): EPE each way, the lower and its direction, and
    that direction's accuracies. NaN where a direction has no valid pixel."""
    valid_fwd, valid_bwd = direction_masks(flow_valid)
    fwd, bwd = epe(pred, flow_fwd, valid_fwd), epe(pred, flow_bwd, valid_bwd)
    backward = np.isfinite(bwd) and (not np.isfinite(fwd) or bwd < fwd)
    gt, valid = (flow_bwd, valid_bwd) if backward else (flow_fwd, valid_fwd)
    scores: dict[str, Any] = {"epe_fwd": fwd, "epe_bwd": bwd, "epe_min": bwd if backward else fwd,
                              "direction": BACKWARD if backward else FORWARD}
    scores.update({f"acc_{int(t)}": accuracy(pred, gt, valid, t) for t in THRESHOLDS})
    return scores


def summarise(per_image: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of each metric over the images where it is defined, and the counts."""
    rows = list(per_image)
    means: dict[str, Any] = {}
    for name in METRICS:
        values = np.array([r[name] for r in rows], dtype=np.float64)
        defined = values[np.isfinite(values)]
        means[name] = float(defined.mean()) if defined.size else float("nan")
    means["images"] = len(rows)
    means["backward_share"] = (sum(r["direction"] == BACKWARD for r in rows) / len(rows)) if rows else float("nan")
    return means


@dataclass(frozen=True)
class FlowReport:
    """What ``evaluate_flow`` measured (all of it is also in ``folder/report.json``)."""

    folder: Path
    metrics: dict[str, Any]
    flow_sources: dict[str, int]

    def describe(self) -> str:
        m = self.metrics
        sources = ", ".join(f"{name} {count}" for name, count in self.flow_sources.items())
        return (f"EPE min(fwd, bwd) {m['epe_min']:.3f} px (fwd {m['epe_fwd']:.3f}, bwd {m['epe_bwd']:.3f}) over "
                f"{m['images']} images; accuracy <1/3/5 px {percent(m['acc_1'])}/{percent(m['acc_3'])}/"
                f"{percent(m['acc_5'])} %\nground truth: {sources}\nreport: {self.folder}")


def checkpoint_config(state: dict[str, Any]) -> FlowConfig:
    config = build(FlowConfig, json.loads(state["config"]))
    check_flow_config(config)
    return config


def load_network(state: dict[str, Any], config: FlowConfig) -> BlurFlowNet:
    return load_weights(BlurFlowNet(config), state["model"])


def evaluate_flow(checkpoint: str | Path, data: str | Path, out: str | Path, *, split: str = "test",
                  device: str = "auto", batch_size: int = 16, progress: bool = True) -> FlowReport:
    """Score a flow checkpoint on DATA's ``split`` and write the report folder ``out``; every bad
    input is one :class:`BlurgenError` line, before any work."""
    from tqdm import tqdm

    refuse_existing(out)  # early: never compute for minutes and then refuse
    state = load_checkpoint(Path(checkpoint), TASK)
    config = checkpoint_config(state)
    try:
        files = flow_split_files(data, split)
    except BlurgenError as exc:
        raise BlurgenError(f"flow evaluation needs the '{split}' shards: {exc}") from None
    shards = ShardDataset(files, fields=())
    check_crop_fits(config, tuple(ShardDataset(files, fields=("image",))[0]["image"].shape[:2]))
    sample_ids = [str(s) for s in shards.column("sample_id")]
    sources = flow_sources(files)
    dev = resolve_device(device)
    model = load_network(state, config).to(dev)

    flows, rows, shown = [], [], []
    with tqdm(total=len(sample_ids), desc="predicting", unit="img", disable=not progress or None) as bar:
        for pred, truth in predict_flows(model, files, config, dev, batch_size=batch_size, on_batch=bar.update):
            scores = score_image(pred, truth["flow_fwd"], truth["flow_bwd"], truth["flow_valid"])
            if len(shown) < SHOWN:
                shown.append(_row(truth, pred, scores, sample_ids[len(rows)]))
            flows.append(pred)
            rows.append(scores)
    metrics = summarise(rows)
    source_counts = dict(sorted(Counter(sources).items()))
    report = FlowReport(Path(out), metrics, source_counts)
    payload = {"task": TASK, **provenance(state["config"], checkpoint=checkpoint, data=data),
               "split": split, "checkpoint_epoch": state.get("epoch"),
               "checkpoint_global_step": state.get("global_step"), "device": dev.type,
               "crop": list(config.data.crop) if config.data.crop is not None else None,
               "flow_sources": source_counts, "metrics": metrics, "run_sources": state.get("sources"),
               "scores_training_data": bool(shards_of(files, (state.get("sources") or {}).get("train")))}
    with staged_folder(out) as folder:
        write_json(folder / "report.json", payload)
        (folder / "report.md").write_text(_markdown(payload), encoding="utf-8")
        columns = {name: np.array([r[name] for r in rows], dtype=np.float64) for name in METRICS}
        write_h5_groups(folder / "flows.h5", {"predictions": {
            "sample_id": np.array(sample_ids), "flow": np.stack(flows).astype(np.float32),
            "direction": np.array([r["direction"] for r in rows]), "flow_source": np.array(sources), **columns}},
            attrs={"task": TASK, "checkpoint": payload["checkpoint"], "split": split, "crop": payload["crop"],
                   "blurgen_version": payload["blurgen_version"],
                   "flow": "(u, v) = (dx, dy) px, x right, y down, of the (cropped) image; compare with the "
                           "shards' flow_fwd and flow_bwd by sample_id"})
        write_png(folder / "flows.png", tile_grid(shown, cols=1))
    return report


def _tile(image: np.ndarray, lines: list[str]) -> np.ndarray:
    tile, _ = fit_width(image, TILE_WIDTH)
    return draw_label(np.ascontiguousarray(tile), lines)


def _row(truth: dict[str, np.ndarray], pred: np.ndarray, scores: dict[str, Any], sample_id: str) -> np.ndarray:
    """One line of flows.png: the blurred image, the true flow of the direction the prediction
    was scored against, and the prediction, both flows on one colour scale."""
    backward = scores["direction"] == BACKWARD
    gt = truth["flow_bwd"] if backward else truth["flow_fwd"]
    valid = direction_masks(truth["flow_valid"])[1 if backward else 0]
    scale = max(float(np.hypot(*np.moveaxis(np.where(valid[..., None], gt, 0), -1, 0)).max()),
                float(np.hypot(pred[..., 0], pred[..., 1]).max()), 1e-6)
    return hstack([_tile(truth["image"], [sample_id[-24:]]),
                   _tile(flow_to_rgb(gt, scale, valid), ["true " + ("last->first" if backward else "first->last"),
                                                         f"max {scale:.1f} px"]),
                   _tile(flow_to_rgb(pred, scale), ["predicted", f"EPE {scores['epe_min']:.2f} px"])])


def _markdown(payload: dict[str, Any]) -> str:
    m = payload["metrics"]
    sources = ", ".join(f"`{name}` ({count})" for name, count in payload["flow_sources"].items())
    return "\n".join([
        "# Flow evaluation", "",
        f"- checkpoint: `{payload['checkpoint']}` (epoch {payload['checkpoint_epoch']})",
        f"- data: `{payload['data']}`, split `{payload['split']}`, {m['images']} images, crop "
        f"{payload['crop'] or 'none (whole images)'}; blurgen {payload['blurgen_version']}, device {payload['device']}",
        f"- ground truth computed by: {sources}",
        *([TRAINING_DATA_WARNING] if payload["scores_training_data"] else []),
        "- EPE in px (mean over images); accuracies: % of valid pixels under 1/3/5 px in the direction of "
        "min(EPE fwd, EPE bwd). Definitions: docs/train-flow.md.", "",
        markdown_table(["", "EPE min(fwd, bwd)", "EPE fwd", "EPE bwd", "<1 px", "<3 px", "<5 px", "images"], [
            ["model", _px(m["epe_min"]), _px(m["epe_fwd"]), _px(m["epe_bwd"]), percent(m["acc_1"]),
             percent(m["acc_3"]), percent(m["acc_5"]), m["images"]]]),
        f"The lower direction was the backward one for {percent(m['backward_share'], 1)} % of the images.", ""])


def _px(value: float) -> str:
    return f"{value:.3f}" if np.isfinite(value) else "–"
