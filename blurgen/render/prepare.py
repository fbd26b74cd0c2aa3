"""Preparing a work item before Blender renders it: its random draws and its background crop.

Each item draws from its own streams (``item_rng(seed, item_id, stream)``): the 6D trajectory,
the background and its crop, the Cycles seed; its object's normalisation is the plan's (read
from the manifest once). Nothing here depends on Blender's output, so the item's background is
read (and an unreadable one skipped) before any rendering is spent on it.
Data flow: plan -> prepare -> blender -> samples.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from blurgen._blender_scripts.contract import INSTANTS, ITEM_SEED_BOUND
from blurgen.color import srgb_to_linear
from blurgen.errors import BlurgenError
from blurgen.render.camera import camera_of
from blurgen.render.compose import crop_background, load_background
from blurgen.render.config import RenderConfig
from blurgen.render.normalise import Normalisation
from blurgen.render.plan import STREAM_BACKGROUND, STREAM_CYCLES, STREAM_TRAJECTORY, Plan, WorkItem
from blurgen.render.trajectory import Trajectory, sample_trajectory
from blurgen.rng import item_rng


class SkipItem(Exception):
    """An item that cannot be made (its input is bad); counted under ``reason``, never fatal."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason


@dataclasses.dataclass(frozen=True)
class PreparedItem:
    """A work item with its random draws made: trajectory, background crop, Cycles seed."""

    item: WorkItem
    trajectory: Trajectory
    background_id: str
    background_linear: np.ndarray  # (H, W, 3) float32, linear light
    cycles_seed: int
    normalisation: Normalisation  # the mesh file's coordinates -> the unit object the trajectory moves

    def camera_from_file(self, t: float) -> np.ndarray:
        """4x4 pose of the mesh file's coordinates in the OpenCV camera frame at instant ``t``."""
        pose = self.trajectory.camera_from_object(t)
        # skipped, not multiplied by the identity, so normalised meshes keep their poses bit for bit
        return pose if self.normalisation.is_identity else pose @ self.normalisation.matrix()


def prepare_item(config: RenderConfig, plan: Plan, item: WorkItem) -> PreparedItem:
    """Draw the item's trajectory, background and seed from its own streams; load the crop.

    Raises :class:`SkipItem` for an unreadable background (the caller counts the skip); a
    trajectory that cannot be placed is a config error and propagates.
    """
    t = config.trajectory
    trajectory = sample_trajectory(
        item_rng(config.seed, item.item_id, STREAM_TRAJECTORY), camera_of(config),
        instants=INSTANTS, depth=tuple(t.depth[:2]), object_size=tuple(t.object_size[:2]),
        translation=tuple(t.translation[:2]), rotation_deg=tuple(t.rotation_deg[:2]), margin=t.margin)
    bg_rng = item_rng(config.seed, item.item_id, STREAM_BACKGROUND)
    background_id = plan.background_ids[int(bg_rng.integers(len(plan.background_ids)))]
    try:
        source = load_background(plan.backgrounds.path_of(background_id))
    except BlurgenError as exc:
        raise SkipItem("unreadable background", str(exc)) from None
    crop = crop_background(source, config.camera.width, config.camera.height, bg_rng)
    seed = int(item_rng(config.seed, item.item_id, STREAM_CYCLES).integers(0, ITEM_SEED_BOUND))
    return PreparedItem(item, trajectory, background_id, srgb_to_linear(crop), seed,
                        plan.normalisations[item.object_id])
