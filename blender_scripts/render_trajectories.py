"""Render moving-object RGBA layers with Cycles: the Blender side of ``blurgen render``.

Runs INSIDE Blender and imports only bpy, numpy, mathutils and the standard library. Two ways
to start it (blurgen's ``blurgen.render.blender.find_blender`` picks one)::

    blender -b --factory-startup --python render_trajectories.py -- JOB.json
    python render_trajectories.py JOB.json        # a Python that has the ``bpy`` wheel

Job JSON (written by the parent; keys marked * are optional)::

    {"width": 64, "height": 48,
     "camera": {"focal_mm": 35.0, "sensor_width_mm": 36.0},
     "cycles": {"device": "CPU" | "GPU", "samples": 16, "adaptive_threshold": 0.0,
                "denoise": false, "max_bounces": 4, "threads": 0, "pixel_filter_width": 1.5},
     "lighting"*: {"ambient"*: 0.5, "sun_strength"*: 3.0, "sun_direction"*: [x, y, z]},
     "silhouette_samples"*: 1,
     "items": [{"item_id": 17, "mesh": "/abs/model_normalized.obj", "out": "/abs/item-17.npz",
                "scale": 0.8, "positions": [[x, y, z] * 24], "axis": [ax, ay, az],
                "angles": [24 radians], "base_quat": [w, x, y, z], "seed": 12345,
                "renders": {"sub_intervals": true, "sharp": true, "silhouettes": true,
                            "windows"*: [[start, count], ...], "coords"*: false}}, ...],
     "_test_crash_after"*: n, "_test_hang_after"*: n}

Conventions (the parent's projection code relies on every one of them):

* World = camera coordinates. The camera is a pinhole at the origin with identity rotation,
  looking down -Z, x right, y up; sensor fit HORIZONTAL, square pixels, no shift. A point
  (X, Y, Z) with Z < 0 lands at continuous pixel coordinates
  ``u = W/2 + f * X / -Z``, ``v = H/2 - f * Y / -Z`` with ``f = focal_mm / sensor_width_mm * W``,
  u to the right from the left image edge, v down from the top edge; pixel (row r, column c)
  covers [c, c+1) x [r, r+1), so its centre is at (c + 0.5, r + 0.5).
* Object coordinates are the OBJ file's raw vertex coordinates: the importer runs with
  ``forward_axis='Y', up_axis='Z'`` (Blender's own axes, so no axis conversion happens),
  ``global_scale=1``, ``clamp_size=0``, and the imported object's transform is identity.
* Pose at instant t (fractional allowed), positions and angles linear in t between instants:
  ``world_from_object = T(position(t)) @ Rot(axis, angle(t)) @ R(base_quat) @ S(scale)``,
  Rot right-handed (counter-clockwise looking down the axis towards the origin).
  Built as a hierarchy: pivot empty (location + AXIS_ANGLE rotation, keyframed at every
  instant with LINEAR interpolation) -> base empty (base_quat, scale) -> mesh (identity).
* Instant t is frame ``FRAME0 + t``. Render j of the sub-intervals has motion blur over exactly
  [instant j, instant j+1] (shutter 1 frame, position START at frame FRAME0 + j). Cycles
  decomposes the object transform at its motion steps into translation (lerped), rotation
  (slerped on the CPU) and scale, which is exact for this motion as long as one step turns by
  less than pi; the mesh gets enough motion steps that one step turns by at most pi/8 (GPU
  kernels nlerp instead of slerp; that small a step keeps their error negligible).
* Render seeds: ``(seed + index) % 2**31`` with index 0..22 the sub-intervals, 23 the sharp
  render, 24..47 the silhouettes (instant = index - 24), 48 + w the w-th window, 2**20 + t the
  coordinate render at instant t.
* Coordinate renders (for exact optical flow in the parent): no motion blur, 1 sample, no
  bounces, pixel filter width 0.01 px, denoising off, and one material for every surface that
  emits its own object coordinates (Texture Coordinate "Object" -> Emission, strength 1). The
  filter leaves each pixel's single camera ray no room to stray from the pixel centre, so a
  pixel holds the object coordinates of the surface point seen at its centre, not a blend (or
  transparent black: alpha is 0 or 1; measured: the coordinates reproject onto the pixel
  centres within 1e-5 px). Emission seen directly is not clamped (``sample_clamp_direct`` 0)
  and the EXR keeps negative values, so the film carries the coordinates unchanged.
* Lighting: the world colour (``ambient`` grey, strength 1) lights the object from all sides and
  one sun of ``sun_strength`` (W/m^2) shines along ``sun_direction`` (the direction the light
  travels, in camera coordinates). The film is transparent, so neither shows in the image.
  Defaults: ambient 0.5, sun 3.0 along (0.35, -0.55, -0.75) (from above left, behind the camera).
* Film: transparent, view transform Standard, look None, exposure 0, no dithering; pixels are
  read from an uncompressed 32-bit float EXR, i.e. Cycles' raw linear premultiplied values.
* Each distinct mesh is imported once per process and hidden while other items render.
* Test hooks: ``_test_crash_after: n`` makes the process SIGKILL itself when n items are done
  (before item index n), ``_test_hang_after: n`` makes it sleep forever there. A retried job
  holds only the unfinished items, so a hook at n >= 1 fires again only if >= n + 1 remain.

Output per item, ``np.savez`` (uncompressed) written atomically at ``item["out"]``; float
images are linear scene-referred, premultiplied RGBA, rows top to bottom:

* ``layers`` float32 (n, H, W, 4): the sub-interval renders asked for (``sub_intervals``: true
  for all 23, or a list of indices), with ``layer_indices`` int32 (n,) saying which
* ``sharp`` float32 (H, W, 4): no motion blur, instant 11.5 (if ``sharp``)
* ``silhouettes`` bool (m, H, W): alpha >= 0.5 at the instants asked for (``silhouettes``: true
  for all 24, or a list), ``silhouette_samples`` spp, no bounces, no motion blur, with
  ``silhouette_instants`` int32 (m,)
* ``cycles_seconds`` float64 scalar: wall time spent inside Cycles' render calls for this item
* ``windows`` float32 (n, H, W, 4) and ``window_spans`` int32 (n, 2) = [start, count]: direct
  motion-blurred renders over [start, start + count] (only when windows are asked for)
* ``coords`` float32 (m, H, W, 3): object coordinates (the OBJ file's) of the surface seen at
  each pixel centre, 0 where no surface is; ``coord_hits`` bool (m, H, W): a surface is seen
  there; ``coord_instants`` int32 (m,): the instants (``coords``: false (the default), true for
  all 24, or a list)

An item that cannot be rendered (mesh fails to import or has no faces, a referenced material
library or texture image that does not load, bad item values) gets ``<out>.error.json``
``{"item_id", "reason"}`` instead, and the next item goes on. Protocol lines on stdout, one per
item: ``blurgen-item-done <item_id>`` or ``blurgen-item-error <item_id> <reason>``; a job that
cannot run at all prints ``blurgen-fatal <reason>`` and exits with status 2. Everything Blender
itself prints goes to stderr (the parent keeps it in a log file). Any other exception is a crash:
traceback on stderr and exit status 1, so the parent retries the unfinished items.
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import signal
import sys
import time
import traceback

import bpy
import mathutils
import numpy as np

FRAME0 = 1  # frame of instant 0 (frame 0 is avoided only out of habit: Blender starts at 1)
INSTANTS = 24
SUB_INTERVALS = INSTANTS - 1
SHARP_INSTANT = (INSTANTS - 1) / 2  # 11.5, the trajectory centre
SHARP_INDEX = SUB_INTERVALS  # render index (seed offset) of the sharp render
SILHOUETTE_INDEX0 = SHARP_INDEX + 1
WINDOW_INDEX0 = SILHOUETTE_INDEX0 + INSTANTS
COORD_INDEX0 = 2**20  # above any window index: a job never has a million windows per item
COORD_FILTER_WIDTH = 0.01  # px: Blender's smallest; the one sample per pixel is at its centre
MAX_STEP_ANGLE = math.pi / 8  # most rotation Cycles interpolates within one motion step
MAX_MOTION_STEPS = 8  # 2**8 segments: 32 full turns per shutter at MAX_STEP_ANGLE
SEED_MODULUS = 2**31
DEFAULT_LIGHTING = {"ambient": 0.5, "sun_strength": 3.0, "sun_direction": [0.35, -0.55, -0.75]}


class ItemError(Exception):
    """An item that cannot be rendered because of its inputs (reported, then the next item)."""


class JobError(Exception):
    """A job that cannot run at all (reported as blurgen-fatal, no retry helps)."""


# ---------------------------------------------------------------- process plumbing


def job_path_from_argv(argv: list[str]) -> str:
    """The job path: the first argument after ``--`` (blender binary), else argv[1] (bpy)."""
    args = argv[argv.index("--") + 1:] if "--" in argv else argv[1:]
    if len(args) != 1:
        raise JobError(f"expected one argument, the job JSON path; got {args!r}")
    return args[0]


def protocol_channel():
    """A text stream on the original stdout for protocol lines; stdout itself goes to stderr.

    Blender and Cycles print chatter ("Saved: ...", importer timings) on stdout from C code, so
    the redirection is done on file descriptor 1, not on ``sys.stdout``.
    """
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return proto


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


# ---------------------------------------------------------------- scene set-up (once per job)


def setup_scene(job: dict):
    """Empty scene with the camera, the light rig and the fixed Cycles/film/colour settings."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x = int(job["width"])
    render.resolution_y = int(job["height"])
    render.resolution_percentage = 100
    render.pixel_aspect_x = render.pixel_aspect_y = 1.0
    render.film_transparent = True
    render.dither_intensity = 0.0
    render.use_motion_blur = False
    render.motion_blur_position = "START"  # the shutter opens at the current frame
    # The default shutter curve is flat: time is sampled uniformly over the shutter, which is
    # what makes the mean of sub-interval layers equal the render of their union.
    render.use_compositing = False
    render.use_sequencer = False
    scene.view_settings.view_transform = "Standard"
    scene.view_settings.look = "None"
    scene.view_settings.exposure = 0.0
    scene.view_settings.gamma = 1.0
    image = render.image_settings
    image.file_format = "OPEN_EXR"  # float, linear, premultiplied: the raw render result
    image.color_mode = "RGBA"
    image.color_depth = "32"
    image.exr_codec = "NONE"  # nothing to gain compressing a file that lives for milliseconds

    cyc = job.get("cycles", {})
    setup_device(scene, str(cyc.get("device", "CPU")).upper())
    scene.cycles.samples = int(cyc.get("samples", 16))
    threshold = float(cyc.get("adaptive_threshold", 0.0))
    scene.cycles.use_adaptive_sampling = threshold > 0
    if threshold > 0:
        scene.cycles.adaptive_threshold = threshold
    scene.cycles.use_denoising = bool(cyc.get("denoise", False))
    scene.cycles.max_bounces = int(cyc.get("max_bounces", 4))
    scene.cycles.filter_width = float(cyc.get("pixel_filter_width", 1.5))
    scene.cycles.use_animated_seed = False  # the seed is set per render, see render_exr()
    threads = int(cyc.get("threads", 0))
    render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        render.threads = threads

    cam_cfg = job.get("camera", {})
    camera = bpy.data.objects.new("blurgen_camera", bpy.data.cameras.new("blurgen_camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    camera.matrix_world = mathutils.Matrix.Identity(4)  # at the origin, looking down -Z
    camera.data.type = "PERSP"
    camera.data.lens_unit = "MILLIMETERS"
    camera.data.lens = float(cam_cfg.get("focal_mm", 35.0))
    camera.data.sensor_fit = "HORIZONTAL"
    camera.data.sensor_width = float(cam_cfg.get("sensor_width_mm", 36.0))
    camera.data.shift_x = camera.data.shift_y = 0.0
    camera.data.clip_start = 1e-3
    camera.data.clip_end = 1e4
    setup_lighting(scene, {**DEFAULT_LIGHTING, **job.get("lighting", {})})
    return scene


def setup_device(scene, device: str) -> None:
    """CPU, or every GPU of the first backend that has one (no silent fall-back to the CPU)."""
    if device == "CPU":
        scene.cycles.device = "CPU"
        return
    if device != "GPU":
        raise JobError(f"cycles.device must be CPU or GPU, not {device!r}")
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for backend in ("OPTIX", "CUDA", "HIP", "ONEAPI", "METAL"):
        try:
            prefs.compute_device_type = backend
        except TypeError:  # backend not compiled into this build
            continue
        prefs.refresh_devices()
        gpus = [d for d in prefs.devices if d.type == backend]
        if gpus:
            for d in prefs.devices:
                d.use = d.type == backend
            scene.cycles.device = "GPU"
            print(f"blurgen: rendering on {backend}: {', '.join(d.name for d in gpus)}", file=sys.stderr)
            return
    raise JobError("cycles.device is GPU but Blender finds no usable GPU (OptiX, CUDA, HIP, oneAPI, Metal)")


def setup_lighting(scene, lighting: dict) -> None:
    world = bpy.data.worlds.new("blurgen_world")
    scene.world = world
    ambient = float(lighting["ambient"])
    background = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    background.inputs["Color"].default_value = (ambient, ambient, ambient, 1.0)
    background.inputs["Strength"].default_value = 1.0
    strength = float(lighting["sun_strength"])
    if strength <= 0:
        return
    direction = mathutils.Vector(lighting["sun_direction"])
    if direction.length == 0:
        raise JobError("lighting.sun_direction must not be zero")
    sun = bpy.data.objects.new("blurgen_sun", bpy.data.lights.new("blurgen_sun", "SUN"))
    sun.data.energy = strength
    # A sun shines along its local -Z axis.
    sun.rotation_mode = "QUATERNION"
    sun.rotation_quaternion = direction.normalized().to_track_quat("-Z", "Y")
    scene.collection.objects.link(sun)


# ---------------------------------------------------------------- meshes


class Rig:
    """One imported mesh: pivot empty (motion) -> base empty (base rotation, scale) -> meshes."""

    def __init__(self, pivot, base, meshes):
        self.pivot, self.base, self.meshes = pivot, base, meshes

    def show(self, visible: bool) -> None:
        for obj in self.meshes:
            obj.hide_render = not visible


def _referenced_mtl_files(obj_path: str) -> list[str]:
    """Material libraries named by ``mtllib`` lines (regex over the bytes: OBJs can be huge)."""
    with open(obj_path, "rb") as fh:
        data = fh.read()
    names = []
    for match in re.finditer(rb"^[ \t]*mtllib[ \t]+(.+?)[ \t]*\r?$", data, re.M):
        names.append(match.group(1).decode("utf-8", "replace"))
    return [os.path.join(os.path.dirname(obj_path), n) for n in names]


def _cleanup(objects) -> None:
    meshes = {o.data for o in objects if o.type == "MESH"}
    materials = {m for me in meshes for m in me.materials if m is not None}
    images = {n.image for m in materials if m.node_tree for n in m.node_tree.nodes
              if n.type == "TEX_IMAGE" and n.image is not None}
    for o in objects:
        bpy.data.objects.remove(o)
    for collection, blocks in ((bpy.data.meshes, meshes), (bpy.data.materials, materials),
                               (bpy.data.images, images)):
        for block in blocks:
            collection.remove(block)


def _check_imported(obj_path: str, objects) -> None:
    """Raise ItemError for the defects that would otherwise render wrong (no faces, pink, grey)."""
    meshes = [o for o in objects if o.type == "MESH"]
    if not meshes or sum(len(o.data.polygons) for o in meshes) == 0:
        raise ItemError("mesh has no faces")
    for mtl in _referenced_mtl_files(obj_path):
        if not os.path.isfile(mtl):
            raise ItemError(f"material library missing: {mtl}")
    for o in meshes:
        for mat in o.data.materials:
            if mat is None or mat.node_tree is None:
                continue
            for node in mat.node_tree.nodes:
                if node.type != "TEX_IMAGE":
                    continue
                image = node.image
                # The importer keeps a texture it could not read as an image of size 0 x 0
                # (has_data is still True); Cycles would render it magenta.
                if image is None or image.size[0] == 0 or image.size[1] == 0:
                    name = bpy.path.abspath(image.filepath) if image is not None else "(none)"
                    raise ItemError(f"texture failed to load: {os.path.normpath(name)}")


class MeshCache:
    """Each distinct mesh is imported once per process; a failed import is remembered too."""

    def __init__(self, scene):
        self.scene = scene
        self.rigs: dict[str, Rig] = {}
        self.failures: dict[str, str] = {}

    def get(self, path: str) -> Rig:
        key = os.path.abspath(path)
        if key in self.failures:
            raise ItemError(self.failures[key])
        if key not in self.rigs:
            try:
                self.rigs[key] = self._import(key)
            except ItemError as exc:
                self.failures[key] = str(exc)
                raise
        return self.rigs[key]

    def _import(self, path: str) -> Rig:
        if not os.path.isfile(path):
            raise ItemError(f"mesh file not found: {path}")
        before = set(bpy.data.objects)
        try:
            # forward Y / up Z are Blender's own axes: no axis conversion, so object coordinates
            # stay the file's raw coordinates (ShapeNet's +Y up stays +Y).
            bpy.ops.wm.obj_import(filepath=path, forward_axis="Y", up_axis="Z", global_scale=1.0,
                                  clamp_size=0.0, use_split_objects=False, use_split_groups=False,
                                  validate_meshes=True)
        except RuntimeError as exc:
            _cleanup([o for o in bpy.data.objects if o not in before])
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else "unknown error"
            raise ItemError(f"mesh failed to import: {first}") from None
        new = [o for o in bpy.data.objects if o not in before]
        try:
            _check_imported(path, new)
        except ItemError:
            _cleanup(new)
            raise
        pivot = bpy.data.objects.new("blurgen_pivot", None)
        pivot.rotation_mode = "AXIS_ANGLE"
        base = bpy.data.objects.new("blurgen_base", None)
        base.rotation_mode = "QUATERNION"
        base.parent = pivot  # assigning .parent keeps matrix_parent_inverse = identity
        self.scene.collection.objects.link(pivot)
        self.scene.collection.objects.link(base)
        meshes = [o for o in new if o.type == "MESH"]
        for o in new:
            if o.type != "MESH":
                bpy.data.objects.remove(o)
        for o in meshes:
            o.parent = base
            o.matrix_parent_inverse = mathutils.Matrix.Identity(4)
            o.matrix_basis = mathutils.Matrix.Identity(4)
            # Rigid motion only: skip Cycles' per-step check for deformation.
            o.cycles.use_deform_motion = False
        return Rig(pivot, base, meshes)


# ---------------------------------------------------------------- items


def _vector(value, n: int, name: str) -> list[float]:
    try:
        out = [float(x) for x in value]
    except (TypeError, ValueError):
        raise ItemError(f"{name} must be {n} numbers") from None
    if len(out) != n or not all(math.isfinite(x) for x in out):
        raise ItemError(f"{name} must be {n} finite numbers")
    return out


def parse_item(item: dict) -> dict:
    """Checked, normalised copy of an item's pose and render request (ItemError if malformed)."""
    positions = item.get("positions")
    if not isinstance(positions, list) or len(positions) != INSTANTS:
        raise ItemError(f"positions must hold {INSTANTS} points")
    positions = [_vector(p, 3, "each position") for p in positions]
    angles = _vector(item.get("angles"), INSTANTS, "angles")
    axis = mathutils.Vector(_vector(item.get("axis"), 3, "axis"))
    if axis.length < 1e-12:
        if any(a != 0 for a in angles):
            raise ItemError("axis must not be zero when the object rotates")
        axis = mathutils.Vector((0.0, 0.0, 1.0))
    quat = mathutils.Quaternion(_vector(item.get("base_quat"), 4, "base_quat"))
    if quat.magnitude < 1e-12:
        raise ItemError("base_quat must not be zero")
    scale = float(item.get("scale", 1.0))
    if not (math.isfinite(scale) and scale > 0):
        raise ItemError("scale must be a positive number")
    renders = dict(item.get("renders", {}))
    windows = []
    for w in renders.get("windows", []) or []:
        try:
            start, count = (int(x) for x in w)
        except (TypeError, ValueError):
            raise ItemError(f"window {w!r} is not [start, count]") from None
        if count < 1 or start < 0 or start + count > SUB_INTERVALS:
            raise ItemError(f"window {[start, count]} is not inside instants 0..{SUB_INTERVALS}")
        windows.append((start, count))
    return {"positions": positions, "angles": angles, "axis": axis.normalized(),
            "base_quat": quat.normalized(), "scale": scale, "seed": int(item.get("seed", 0)),
            "sub_intervals": _indices(renders.get("sub_intervals", True), SUB_INTERVALS, "sub_intervals"),
            "sharp": bool(renders.get("sharp", True)),
            "silhouettes": _indices(renders.get("silhouettes", True), INSTANTS, "silhouettes"),
            "windows": windows,
            "coords": _indices(renders.get("coords", False), INSTANTS, "coords")}


def _indices(value, n: int, name: str) -> list[int]:
    """``true`` -> all of 0..n-1, ``false`` -> none, a list -> those indices (sorted, unique).

    The parent asks only for what its windows use (centred windows k = 1..10 need sub-intervals
    6..15 and 11 silhouettes), which is most of blurgen's speed over rendering every image.
    """
    if value is True or value is None:
        return list(range(n))
    if value is False:
        return []
    try:
        indices = sorted({int(i) for i in value})
    except (TypeError, ValueError):
        raise ItemError(f"renders.{name} must be true, false or a list of indices") from None
    if indices and (indices[0] < 0 or indices[-1] >= n):
        raise ItemError(f"renders.{name} indices must lie in 0..{n - 1}")
    return indices


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
    """Key the pivot at every instant (LINEAR) and set the base rotation and scale."""
    rig.base.rotation_quaternion = pose["base_quat"]
    rig.base.scale = (pose["scale"],) * 3
    pivot = rig.pivot
    pivot.animation_data_clear()
    ax, ay, az = pose["axis"]
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

    def __init__(self, scene, job: dict):
        self.scene = scene
        self.samples = int(job.get("cycles", {}).get("samples", 16))
        self.max_bounces = int(job.get("cycles", {}).get("max_bounces", 4))
        self.silhouette_samples = int(job.get("silhouette_samples", 1))
        self.width, self.height = int(job["width"]), int(job["height"])
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

    def coordinates(self, folder: str, seed: int, instant: int) -> tuple[np.ndarray, np.ndarray]:
        """(H, W, 3) float32 object coordinates of the surface at each pixel centre, (H, W) hits.

        One sample per pixel through its centre (filter width COORD_FILTER_WIDTH), no bounces,
        no denoiser, every surface emitting its own object coordinates: see the module doc.
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
        return coords.astype(np.float32), hits


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

    The file is the uncompressed, 32-bit float, scanline EXR that setup_scene asks for, which
    numpy reads directly (about 1 ms at 320x240, against about 9 ms through
    ``bpy.data.images.load`` and ``Image.pixels``: a tenth of a low-sample render). Anything
    else falls back to Blender's own loader.
    """
    try:
        with open(path, "rb") as fh:
            data = fh.read()
        rgba = _parse_uncompressed_exr(data, width, height)
        if rgba is None:
            rgba = _read_exr_with_blender(path, width, height)
    finally:
        os.unlink(path)
    return rgba


def _parse_uncompressed_exr(data: bytes, width: int, height: int):
    """RGBA float32 (H, W, 4) from an uncompressed float scanline EXR, or None if it is not one."""
    # magic number; then version 2 with flags: tiled (bit 9), deep (11) or multi-part (12) files
    # are not the simple layout read here (long names, bit 10, are fine)
    if data[:4] != b"\x76\x2f\x31\x01" or data[4] != 2 or data[5] & (0x02 | 0x08 | 0x10):
        return None
    pos, attrs = 8, {}
    while data[pos] != 0:  # header: name\0 type\0 size value, ended by an empty name
        name_end = data.index(b"\0", pos)
        type_end = data.index(b"\0", name_end + 1)
        size = int.from_bytes(data[type_end + 1:type_end + 5], "little")
        attrs[data[pos:name_end].decode()] = data[type_end + 5:type_end + 5 + size]
        pos = type_end + 5 + size
    pos += 1
    channels, raw = [], attrs.get("channels", b"")
    i = 0
    while i < len(raw) and raw[i] != 0:  # chlist: name\0 pixel_type(int32) ... 16 bytes after the name
        end = raw.index(b"\0", i)
        channels.append((raw[i:end].decode(), int.from_bytes(raw[end + 1:end + 5], "little")))
        i = end + 17
    window = np.frombuffer(attrs.get("dataWindow", b"\0" * 16), dtype="<i4")
    if (attrs.get("compression", b"\xff")[0] != 0 or sorted(channels) != channels
            or [c for c, _ in channels] != ["A", "B", "G", "R"] or any(t != 2 for _, t in channels)
            or tuple(window) != (0, 0, width - 1, height - 1)):
        return None
    line = 8 + 4 * 4 * width  # per scanline: y (int32), byte count (int32), A, B, G, R rows
    first = int.from_bytes(data[pos:pos + 8], "little")  # offset table: one uint64 per scanline
    block = np.frombuffer(data, dtype=np.uint8, count=line * height, offset=first).reshape(height, line)
    planes = block[:, 8:].copy().view("<f4").reshape(height, 4, width)  # A, B, G, R per row
    return np.ascontiguousarray(planes[:, [3, 2, 1, 0], :].transpose(0, 2, 1)).astype(np.float32)


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


def render_item(renderer: Renderer, rig: Rig, pose: dict, out: str) -> None:
    """Every render the item asks for, then its .npz; EXRs live in a temp folder beside ``out``."""
    out_dir = os.path.dirname(out) or "."
    os.makedirs(out_dir, exist_ok=True)
    tmp = os.path.join(out_dir, f".{os.path.basename(out)}.render-{os.getpid()}")
    os.makedirs(tmp, exist_ok=True)
    seed = pose["seed"]
    arrays = {}
    try:
        animate(rig, pose)
        moving = {"rig": rig, "angles": pose["angles"]}
        renderer.cycles_seconds = 0.0
        if pose["sub_intervals"]:
            arrays["layers"] = np.stack([renderer.render(tmp, seed + j, frame=FRAME0 + j, shutter=1, **moving)
                                         for j in pose["sub_intervals"]])
            arrays["layer_indices"] = np.array(pose["sub_intervals"], dtype=np.int32)
        if pose["sharp"]:
            arrays["sharp"] = renderer.render(tmp, seed + SHARP_INDEX, frame=FRAME0 + SHARP_INSTANT)
        if pose["silhouettes"]:
            arrays["silhouettes"] = np.stack([renderer.silhouette(tmp, seed + SILHOUETTE_INDEX0 + t, t)
                                              for t in pose["silhouettes"]])
            arrays["silhouette_instants"] = np.array(pose["silhouettes"], dtype=np.int32)
        if pose["windows"]:
            arrays["windows"] = np.stack([
                renderer.render(tmp, seed + WINDOW_INDEX0 + w, frame=FRAME0 + s, shutter=c, **moving)
                for w, (s, c) in enumerate(pose["windows"])])
            arrays["window_spans"] = np.array(pose["windows"], dtype=np.int32)
        if pose["coords"]:
            coords, hits = zip(*(renderer.coordinates(tmp, seed + COORD_INDEX0 + t, t) for t in pose["coords"]))
            arrays["coords"], arrays["coord_hits"] = np.stack(coords), np.stack(hits)
            arrays["coord_instants"] = np.array(pose["coords"], dtype=np.int32)
        arrays["cycles_seconds"] = np.array(renderer.cycles_seconds)
        write_npz_atomic(out, arrays)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_job(job: dict, proto) -> None:
    """Render the items in order, one protocol line each; bad items are reported, not fatal."""
    try:
        scene = setup_scene(job)
    except (KeyError, TypeError, ValueError) as exc:
        raise JobError(f"bad job settings: {type(exc).__name__}: {exc}") from None
    renderer = Renderer(scene, job)
    cache = MeshCache(scene)
    items = job.get("items", [])
    crash_after, hang_after = job.get("_test_crash_after"), job.get("_test_hang_after")
    for n, item in enumerate(items):
        if n == crash_after:  # test hook: die like a segfaulting Blender would
            os.kill(os.getpid(), signal.SIGKILL)
        if n == hang_after:  # test hook: hang like a stuck Blender would
            while True:
                time.sleep(3600)
        item_id = item.get("item_id")
        out = str(item["out"])
        error_path = out + ".error.json"
        try:
            pose = parse_item(item)
            rig = cache.get(str(item["mesh"]))
            for other in cache.rigs.values():
                other.show(other is rig)
            render_item(renderer, rig, pose, out)
        except ItemError as exc:
            reason = " ".join(str(exc).split())  # one line, whatever the message held
            if os.path.exists(out):
                os.unlink(out)
            write_json_atomic(error_path, {"item_id": item_id, "reason": reason})
            proto.write(f"blurgen-item-error {item_id} {reason}\n")
            continue
        if os.path.exists(error_path):
            os.unlink(error_path)
        proto.write(f"blurgen-item-done {item_id}\n")


def main(argv: list[str]) -> int:
    proto = protocol_channel()
    try:
        path = job_path_from_argv(argv)
        try:
            with open(path, encoding="utf-8") as fh:
                job = json.load(fh)
        except (OSError, ValueError) as exc:
            raise JobError(f"cannot read job {path}: {exc}") from None
        run_job(job, proto)
    except JobError as exc:
        proto.write(f"blurgen-fatal {' '.join(str(exc).split())}\n")
        return 2
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        return 1
    finally:
        proto.flush()
    return 0


if __name__ == "__main__":
    code = main(sys.argv)
    sys.stdout.flush()
    sys.stderr.flush()
    # os._exit: skip Blender's atexit teardown, which can take seconds and prints more chatter
    # (and a bpy module can crash in it); all output is written and flushed by now.
    os._exit(code)
