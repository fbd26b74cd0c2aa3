"""The scene every item of a job is rendered in: one small function per concern.

Film and colour (transparent, raw linear values, EXR output), Cycles (samples, bounces, filter,
threads, device), the camera (the pinhole the parent projects with) and the lights. Each takes
the checked settings of :func:`trajectory_job.parse_settings`. Runs inside Blender.
"""

from __future__ import annotations

import sys

import bpy
import mathutils

from trajectory_job import JobError


def setup_scene(settings: dict):
    """An empty scene with the film, Cycles, camera and lights the job asks for."""
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    setup_film(scene, settings["width"], settings["height"])
    setup_cycles(scene, settings["cycles"])
    setup_camera(scene, settings["camera"])
    setup_lighting(scene, settings["lighting"])
    return scene


def setup_film(scene, width: int, height: int) -> None:
    """Transparent film, no colour transform, no dithering, uncompressed float RGBA EXR output."""
    render = scene.render
    render.engine = "CYCLES"
    render.resolution_x = width
    render.resolution_y = height
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


def setup_cycles(scene, cycles: dict) -> None:
    """Samples, adaptive sampling, denoiser, bounces, pixel filter, threads and the device."""
    setup_device(scene, cycles["device"])
    scene.cycles.samples = cycles["samples"]
    threshold = cycles["adaptive_threshold"]
    scene.cycles.use_adaptive_sampling = threshold > 0
    if threshold > 0:
        scene.cycles.adaptive_threshold = threshold
    scene.cycles.use_denoising = cycles["denoise"]
    scene.cycles.max_bounces = cycles["max_bounces"]
    scene.cycles.filter_width = cycles["pixel_filter_width"]
    scene.cycles.use_animated_seed = False  # the seed is set per render (Renderer.render)
    threads = cycles["threads"]
    scene.render.threads_mode = "FIXED" if threads > 0 else "AUTO"
    if threads > 0:
        scene.render.threads = threads


def setup_device(scene, device: str) -> None:
    """CPU, or every GPU of the first backend that has one (no silent fall-back to the CPU)."""
    if device == "CPU":
        scene.cycles.device = "CPU"
        return
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


def setup_camera(scene, camera_settings: dict) -> None:
    """The pinhole at the origin looking down -Z, horizontal sensor fit, no shift."""
    camera = bpy.data.objects.new("blurgen_camera", bpy.data.cameras.new("blurgen_camera"))
    scene.collection.objects.link(camera)
    scene.camera = camera
    camera.matrix_world = mathutils.Matrix.Identity(4)  # at the origin, looking down -Z
    camera.data.type = "PERSP"
    camera.data.lens_unit = "MILLIMETERS"
    camera.data.lens = camera_settings["focal_mm"]
    camera.data.sensor_fit = "HORIZONTAL"
    camera.data.sensor_width = camera_settings["sensor_width_mm"]
    camera.data.shift_x = camera.data.shift_y = 0.0
    camera.data.clip_start = 1e-3
    camera.data.clip_end = 1e4


def setup_lighting(scene, lighting: dict) -> None:
    """A grey world (``ambient``) and one sun of ``sun_strength`` along ``sun_direction``."""
    world = bpy.data.worlds.new("blurgen_world")
    scene.world = world
    ambient = lighting["ambient"]
    background = next(n for n in world.node_tree.nodes if n.type == "BACKGROUND")
    background.inputs["Color"].default_value = (ambient, ambient, ambient, 1.0)
    background.inputs["Strength"].default_value = 1.0
    strength = lighting["sun_strength"]
    if strength <= 0:
        return
    direction = mathutils.Vector(lighting["sun_direction"])
    sun = bpy.data.objects.new("blurgen_sun", bpy.data.lights.new("blurgen_sun", "SUN"))
    sun.data.energy = strength
    # A sun shines along its local -Z axis.
    sun.rotation_mode = "QUATERNION"
    sun.rotation_quaternion = direction.normalized().to_track_quat("-Z", "Y")
    scene.collection.objects.link(sun)
