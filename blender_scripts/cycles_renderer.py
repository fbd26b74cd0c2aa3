"""Rendering one item's frames with Cycles: the motion keys, the render calls, the EXR read-back.

``animate`` keys the rig's pivot at every instant (linear in time, as the contract says);
:class:`Renderer` renders the current scene with or without motion blur over a shutter of whole
instants, silhouettes (coverage only) and object-coordinate frames (for exact flow), each with
its own seed, and reads the float EXR back with numpy (:mod:`exr_reader`). Runs inside Blender.
"""

from __future__ import annotations

import math
import os
import time

import bpy
import mathutils
import numpy as np

from contract import INSTANTS, SEED_MODULUS
from exr_reader import parse_uncompressed_exr
from mesh_import import Rig

FRAME0 = 1  # frame of instant 0 (frame 0 is avoided only out of habit: Blender starts at 1)
COORD_FILTER_WIDTH = 0.01  # px: Blender's smallest; the one sample per pixel is at its centre
MAX_STEP_ANGLE = math.pi / 8  # most rotation Cycles interpolates within one motion step
MAX_MOTION_STEPS = 8  # 2**8 segments: 32 full turns per shutter at MAX_STEP_ANGLE


def _fcurves(obj) -> list:
    """The F-curves of an object's action: slotted actions (Blender >= 4.4) or legacy ones."""
    anim = obj.animation_data
    if anim is None or anim.action is None:
        return []
    if getattr(anim, "action_slot", None) is not None:
        from bpy_extras import anim_utils

        channelbag = anim_utils.action_get_channelbag_for_slot(anim.action, anim.action_slot)
        return list(channelbag.fcurves) if channelbag is not None else []
    return list(anim.action.fcurves)


def animate(rig: Rig, pose: dict) -> None:
    """Key the pivot at every instant (LINEAR), set the base rotation and scale, centre the meshes.

    ``N = S(1/diagonal) · T(-centre)`` is split: the centre becomes the meshes' origin
    (:meth:`Rig.move_origin`), the base scales by ``scale / diagonal`` and stays on the pivot.
    A base moved by ``-k·R·centre`` instead would put the meshes' origin off the point they turn
    about, and Cycles, which interpolates the translation linearly between motion steps, would
    move them along chords of its arc (pixels off the poses for an origin far from the mesh).
    """
    # normalised here, in mathutils' single precision: the numbers Blender's properties hold
    quat = mathutils.Quaternion(pose["base_quat"]).normalized()
    rig.base.rotation_quaternion = quat
    rig.base.location = (0.0, 0.0, 0.0)
    if pose["normalise"] is None:  # normalised already: exactly the transform of old
        rig.move_origin((0.0, 0.0, 0.0))
        rig.base.scale = (pose["scale"],) * 3
    else:  # base = R(quat) · S(scale / diagonal), meshes' origin at the centre
        centre, diagonal = pose["normalise"]
        rig.move_origin(centre)
        rig.base.scale = (pose["scale"] / diagonal,) * 3
    pivot = rig.pivot
    pivot.animation_data_clear()
    ax, ay, az = mathutils.Vector(pose["axis"]).normalized()
    for t in range(INSTANTS):
        pivot.location = pose["positions"][t]
        pivot.rotation_axis_angle = (pose["angles"][t], ax, ay, az)
        pivot.keyframe_insert("location", frame=FRAME0 + t)
        pivot.keyframe_insert("rotation_axis_angle", frame=FRAME0 + t)
    # keyframe_insert makes BEZIER keys whatever the preferences say; Bezier keys with auto
    # handles are linear between inner keys but ease in and out of the first and last ones,
    # which would bend the motion of sub-intervals 0 and 22. The contract says linear.
    for fcurve in _fcurves(pivot):
        for key in fcurve.keyframe_points:
            key.interpolation = "LINEAR"


def motion_steps(angles: list[float], start: int, count: int) -> int:
    """Cycles' object motion_steps for a shutter over instants [start, start + count].

    Cycles samples the transform at 2**steps + 1 times over the shutter (the setting's tooltip
    says 2**(steps-1); its sync code makes (2 << (steps - 1)) + 1 samples) and slerps between
    them, which goes the short way round: each segment must turn by less than pi. Give it
    enough segments that each turns by at most MAX_STEP_ANGLE; a sub-interval needs just 1.
    """
    turn = sum(abs(b - a) for a, b in zip(angles[start:start + count], angles[start + 1:start + count + 1]))
    steps = max(1, math.ceil(math.log2(max(turn / MAX_STEP_ANGLE, 1.0))))
    return min(steps, MAX_MOTION_STEPS)


class Renderer:
    """Renders the current scene to a float EXR in a temp folder and reads it back."""

    def __init__(self, scene, settings: dict):
        """``settings``: the job's, as :func:`trajectory_job.parse_settings` checked them."""
        self.scene = scene
        self.samples = settings["cycles"]["samples"]
        self.max_bounces = settings["cycles"]["max_bounces"]
        self.silhouette_samples = settings["silhouette_samples"]
        self.width, self.height = settings["width"], settings["height"]
        self.flat = bpy.data.materials.new("blurgen_silhouette")  # see silhouette()
        self.coords_material = None  # made on first use, see coordinates()
        self.cycles_seconds = 0.0  # wall time inside Cycles' render call, per item

    def render(self, folder: str, seed: int, *, frame: float, shutter: int | None = None,
               rig: Rig | None = None, angles: list[float] | None = None) -> np.ndarray:
        """(H, W, 4) float32, rows top to bottom; motion blur over ``shutter`` instants from frame.

        With motion blur, ``rig`` and its ``angles`` set the motion steps for this shutter.
        """
        scene = self.scene
        scene.cycles.seed = seed % SEED_MODULUS
        scene.render.use_motion_blur = shutter is not None
        if shutter is not None:
            scene.render.motion_blur_shutter = shutter
            steps = motion_steps(angles, int(frame) - FRAME0, shutter)
            for obj in rig.meshes:
                obj.cycles.motion_steps = steps
        whole = math.floor(frame)
        scene.frame_set(whole, subframe=frame - whole)
        path = os.path.join(folder, "render.exr")
        started = time.perf_counter()
        bpy.ops.render.render()
        self.cycles_seconds += time.perf_counter() - started  # for the "time outside Cycles" figure
        # save_render writes the render result with the scene's image settings, exactly as
        # write_still would, minus a "Saved:" line on stdout per render.
        bpy.data.images["Render Result"].save_render(path, scene=scene)
        return read_exr(path, self.width, self.height)

    def silhouette(self, folder: str, seed: int, instant: int) -> np.ndarray:
        """Coverage only: few samples, no bounces, one flat material for every surface."""
        scene, layer = self.scene, bpy.context.view_layer
        scene.cycles.samples, scene.cycles.max_bounces = self.silhouette_samples, 0
        layer.material_override = self.flat  # no texture look-ups: only coverage is kept
        try:
            rgba = self.render(folder, seed, frame=FRAME0 + instant)
        finally:
            scene.cycles.samples, scene.cycles.max_bounces = self.samples, self.max_bounces
            layer.material_override = None
        return rgba[..., 3] >= 0.5

    def coordinates(self, folder: str, seed: int, instant: int, rig: Rig) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) float32 file coordinates of the surface at each pixel centre, (H, W) hits.

        One sample per pixel through its centre (filter width COORD_FILTER_WIDTH), no bounces,
        no denoiser, every surface emitting its own object coordinates: see the module doc.
        Those are the coordinates of ``rig``'s meshes, whose origin is ``rig.origin`` of the file.
        """
        layer, cyc = bpy.context.view_layer, self.scene.cycles
        if self.coords_material is None:
            self.coords_material = _coordinate_material()
        settings = {"samples": 1, "max_bounces": 0, "filter_width": COORD_FILTER_WIDTH,
                    "use_denoising": False, "use_adaptive_sampling": False, "sample_clamp_direct": 0.0}
        saved = {name: getattr(cyc, name) for name in settings}
        for name, value in settings.items():
            setattr(cyc, name, value)
        layer.material_override = self.coords_material
        try:
            rgba = self.render(folder, seed, frame=FRAME0 + instant)
        finally:
            for name, value in saved.items():
                setattr(cyc, name, value)
            layer.material_override = None
        hits = rgba[..., 3] >= 0.5
        # alpha is exactly 1 where the single sample hits an (opaque) surface; the division
        # only guards the contract against a partial alpha.
        coords = np.where(hits[..., None], rgba[..., :3] / np.maximum(rgba[..., 3:], 1e-12), 0.0)
        coords = coords.astype(np.float32)
        coords[hits] = rig.to_file(coords[hits])
        return coords, hits


def _coordinate_material():
    """A material whose emitted colour is the shading point's object coordinates."""
    mat = bpy.data.materials.new("blurgen_coordinates")
    if mat.node_tree is None:  # older Blenders make a node tree only on request
        mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    for node in list(nodes):
        nodes.remove(node)
    output = nodes.new("ShaderNodeOutputMaterial")
    coords = nodes.new("ShaderNodeTexCoord")
    emission = nodes.new("ShaderNodeEmission")
    emission.inputs["Strength"].default_value = 1.0
    links.new(coords.outputs["Object"], emission.inputs["Color"])
    links.new(emission.outputs["Emission"], output.inputs["Surface"])
    return mat


def read_exr(path: str, width: int, height: int) -> np.ndarray:
    """The EXR's raw float RGBA (premultiplied, linear), rows top to bottom; the file is removed.

    numpy reads the uncompressed float EXR that scene_setup.setup_film asks for (ten times
    faster, see exr_reader); anything else falls back to Blender's own loader.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        rgba = parse_uncompressed_exr(data, width, height)
        if rgba is None:
            rgba = _read_exr_with_blender(path, width, height)
    finally:
        os.unlink(path)
    return rgba


def _read_exr_with_blender(path: str, width: int, height: int) -> np.ndarray:
    image = bpy.data.images.load(path, check_existing=False)
    try:
        # EXR is premultiplied and scene linear: PREMUL and a linear data colourspace make
        # Blender hand back the stored numbers untouched (no un/premultiplying, no transform).
        image.alpha_mode = "PREMUL"
        image.colorspace_settings.is_data = True
        if tuple(image.size) != (width, height):
            raise RuntimeError(f"{path}: Blender wrote {tuple(image.size)}, expected {(width, height)}")
        pixels = np.empty(width * height * 4, dtype=np.float32)
        image.pixels.foreach_get(pixels)
    finally:
        bpy.data.images.remove(image)
    return np.ascontiguousarray(pixels.reshape(height, width, 4)[::-1])
