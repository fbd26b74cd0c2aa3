"""Render moving-object RGBA layers with Cycles: the Blender side of ``blurgen render``.

Runs INSIDE Blender and imports only bpy (with the ``mathutils`` and ``bpy_extras`` modules that
ship with it), numpy and the standard library. Two ways to start it (blurgen's
``blurgen.render.blender.find_blender`` picks one)::

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
                "normalise"*: {"center": [cx, cy, cz], "diagonal": d},
                "renders": {"sub_intervals": true, "sharp": true, "silhouettes": true,
                            "windows"*: [[start, count], ...], "coords"*: false, "mesh"*: false}}, ...],
     "_test_crash_after"*: n}

Conventions (the parent's projection code relies on every one of them):

* World = camera coordinates. The camera is a pinhole at the origin with identity rotation,
  looking down -Z, x right, y up; sensor fit HORIZONTAL, square pixels, no shift. A point
  (X, Y, Z) with Z < 0 lands at continuous pixel coordinates
  ``u = W/2 + f * X / -Z``, ``v = H/2 - f * Y / -Z`` with ``f = focal_mm / sensor_width_mm * W``,
  u to the right from the left image edge, v down from the top edge; pixel (row r, column c)
  covers [c, c+1) x [r, r+1), so its centre is at (c + 0.5, r + 0.5).
* Object coordinates are the mesh file's raw vertex coordinates, whatever its format
  (``.obj``, ``.gltf``/``.glb``, ``.ply``; mesh_import.py): OBJ and PLY are imported with
  ``forward_axis='Y', up_axis='Z'`` (Blender's own axes, so no axis conversion happens),
  ``global_scale=1`` (OBJ: ``clamp_size=0``); a glTF's node transforms and the importer's
  +Y-up to +Z-up turn are folded back into the vertices, so its coordinates are its scene's as
  stored. Each imported mesh object's own transform is identity. Inside Blender the vertices
  are then moved by ``-center`` (the item's ``normalise``; see the pose below), and every output
  in object coordinates (``coords``, ``mesh_vertices``) has ``center`` added back: the file's.
* Pose at instant t (fractional allowed), positions and angles linear in t between instants:
  ``world_from_object = T(position(t)) @ Rot(axis, angle(t)) @ R(base_quat) @ S(scale) @ N``,
  Rot right-handed (counter-clockwise looking down the axis towards the origin), and
  ``N = S(1/diagonal) @ T(-center)`` from the item's ``normalise`` (the identity without it):
  the mesh centred on its bounding box with a unit diagonal, so ``scale`` is its size.
  Built as a hierarchy: pivot empty (location + AXIS_ANGLE rotation, keyframed at every
  instant with LINEAR interpolation) -> base empty (base_quat and scale / diagonal, at the
  pivot) -> mesh (identity; its vertices moved by ``-center``, so its origin is the box centre).
* Instant t is frame ``FRAME0 + t``. Render j of the sub-intervals has motion blur over exactly
  [instant j, instant j+1] (shutter 1 frame, position START at frame FRAME0 + j). Cycles
  decomposes the object transform at its motion steps into translation (lerped), rotation
  (slerped on the CPU) and scale, which is exact for this motion as long as one step turns by
  less than pi and the object's origin is the point it turns about: the pivot, which is why
  the centre is taken out of the vertices and not put on the base (an origin k·|center| from
  the pivot would follow chords of its arc, k·|center|·(1 - cos(step angle / 2)) off: pixels
  for a mesh whose origin lies tens of sizes away). The mesh gets enough motion steps that one
  step turns by at most pi/8 (GPU kernels nlerp instead of slerp; that small a step keeps
  their error negligible).
* Render seeds: ``(seed + index) % 2**31`` with index 0..22 the sub-intervals, 23 the sharp
  render, 24..47 the silhouettes (instant = index - 24), 48 + w the w-th window, 2**20 + t the
  coordinate render at instant t. These numbers, the instants, the protocol words and the error
  report's suffix are defined once, in ``contract.py``, which blurgen imports too.
* Coordinate renders (for exact optical flow in the parent): no motion blur, 1 sample, no
  bounces, pixel filter width 0.01 px, denoising off, and one material for every surface that
  emits its own object coordinates (Texture Coordinate "Object" -> Emission, strength 1). The
  filter leaves each pixel's single camera ray no room to stray from the pixel centre, so a
  pixel holds the object coordinates of the surface point seen at its centre, not a blend (or
  transparent black: alpha is 0 or 1; measured: the coordinates reproject onto the pixel
  centres within 2.3e-5 px). Emission seen directly is not clamped (``sample_clamp_direct`` 0)
  and the EXR keeps negative values, so the film carries the coordinates unchanged.
* Lighting: the world colour (``ambient`` grey, strength 1) lights the object from all sides and
  one sun of ``sun_strength`` (W/m^2) shines along ``sun_direction`` (the direction the light
  travels, in camera coordinates). The film is transparent, so neither shows in the image.
  Defaults: ambient 0.5, sun 3.0 along (0.35, -0.55, -0.75) (from above left, behind the camera).
* Film: transparent, view transform Standard, look None, exposure 0, no dithering; pixels are
  read from an uncompressed 32-bit float EXR, i.e. Cycles' raw linear premultiplied values.
* Each distinct mesh is imported once per process and hidden while other items render.
* Test hook: ``_test_crash_after: n`` makes the process SIGKILL itself when n items are done
  (before item index n). A retried job holds only the unfinished items, so a hook at n >= 1
  fires again only if >= n + 1 remain.

Modules, one concern each (this folder is put first on ``sys.path``): ``contract`` (what blurgen
shares), ``trajectory_job`` (command line, job settings and items, checked; plain Python),
``exr_reader`` (numpy reads Cycles' EXRs; plain Python), ``item_files`` (atomic .npz and JSON),
``scene_setup`` (film, Cycles, camera, lights), ``mesh_import`` (OBJ, glTF and PLY import, defect
checks, the rig), ``cycles_renderer`` (motion keys, renders, silhouettes, coordinates); this file runs a job.

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
* ``coords`` float32 (m, H, W, 3): object coordinates (the mesh file's) of the surface seen at
  each pixel centre, 0 where no surface is; ``coord_hits`` bool (m, H, W): a surface is seen
  there; ``coord_instants`` int32 (m,): the instants (``coords``: false (the default), true for
  all 24, or a list)

* ``mesh_vertices`` float32 (N, 3) and ``mesh_faces`` int32 (F, 3): every triangle of the item's
  meshes in the file's coordinates (only when ``mesh`` is true), from which the parent computes
  the exact time-integrated coverage the labels use (blurgen/render/coverage.py)

An item that cannot be rendered (mesh fails to import or has no faces, a referenced material
library or texture image that does not load, bad item values) gets ``<out>.error.json``
``{"item_id", "reason"}`` instead, and the next item goes on. Protocol lines on stdout, one per
item: ``blurgen-item-done <item_id>`` or ``blurgen-item-error <item_id> <reason>``; a job that
cannot run at all prints ``blurgen-fatal <reason>`` and exits with status 2. Everything Blender
itself prints goes to stderr (the parent keeps it in a log file). Any other exception is a crash:
traceback on stderr and exit status 1, so the parent retries the unfinished items.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # this folder's modules, first

import numpy as np  # noqa: E402

from contract import (COORD_INDEX0, CRASH_AFTER, ERROR_SUFFIX, FATAL, FATAL_EXIT_STATUS, ITEM_DONE,  # noqa: E402
                      ITEM_ERROR, SHARP_INDEX, SHARP_INSTANT, SILHOUETTE_INDEX0, WINDOW_INDEX0)
from cycles_renderer import FRAME0, Renderer, animate  # noqa: E402
from item_files import write_json_atomic, write_npz_atomic  # noqa: E402
from mesh_import import MeshCache, Rig  # noqa: E402
from scene_setup import setup_scene  # noqa: E402
from trajectory_job import ItemError, JobError, job_path_from_argv, parse_item, parse_settings, read_job  # noqa: E402


def protocol_channel():
    """A text stream on the original stdout for protocol lines; stdout itself goes to stderr.

    Blender and Cycles print chatter ("Saved: ...", importer timings) on stdout from C code, so
    the redirection is done on file descriptor 1, not on ``sys.stdout``.
    """
    sys.stdout.flush()
    proto = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)
    return proto


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
            coords, hits = zip(*(renderer.coordinates(tmp, seed + COORD_INDEX0 + t, t, rig)
                                 for t in pose["coords"]))
            arrays["coords"], arrays["coord_hits"] = np.stack(coords), np.stack(hits)
            arrays["coord_instants"] = np.array(pose["coords"], dtype=np.int32)
        if pose["mesh"]:  # the triangles the parent rasterises for the labels' exact coverage
            arrays["mesh_vertices"], arrays["mesh_faces"] = rig.triangles()
        arrays["cycles_seconds"] = np.array(renderer.cycles_seconds)
        write_npz_atomic(out, arrays)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def run_job(job: dict, proto) -> None:
    """Render the items in order, one protocol line each; bad items are reported, not fatal."""
    settings = parse_settings(job)
    scene = setup_scene(settings)
    renderer = Renderer(scene, settings)
    cache = MeshCache(scene)
    items = job.get("items", [])
    crash_after = job.get(CRASH_AFTER)
    for n, item in enumerate(items):
        if n == crash_after:  # test hook: die like a segfaulting Blender would
            os.kill(os.getpid(), signal.SIGKILL)
        item_id = item.get("item_id")
        out = str(item["out"])
        error_path = out + ERROR_SUFFIX
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
            proto.write(f"{ITEM_ERROR} {item_id} {reason}\n")
            continue
        if os.path.exists(error_path):
            os.unlink(error_path)
        proto.write(f"{ITEM_DONE} {item_id}\n")


def main(argv: list[str]) -> int:
    proto = protocol_channel()
    try:
        run_job(read_job(job_path_from_argv(argv)), proto)
    except JobError as exc:
        proto.write(f"{FATAL} {' '.join(str(exc).split())}\n")
        return FATAL_EXIT_STATUS
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
