"""Config of ``blurgen render`` (config kind ``render``); presets ``demo`` (default) and ``paper``.

Every field is documented here; docs/render.md sets the fields against the blur-retrieval
paper (Zou et al., ECCV 2024, §4.1).
"""

from __future__ import annotations

from blurgen._blender_scripts.contract import INSTANTS
from blurgen.config import option, section
from blurgen.config.common import OutputSection, TasksSection
from blurgen.shards.schemas import RENDER

KIND = "render"
SCHEMA = RENDER.name  # its fields: blurgen/shards/schemas.py
NUM_INSTANTS = INSTANTS  # trajectory instants (the Blender contract); 23 sub-intervals between them


@section
class AssetsSection:
    objects: str | None = option(None, "object manifest JSON made by `blurgen assets scan-shapenet` or "
                                       "`scan-meshes`; "
                                       "null: the built-in demo objects (made on first use)")
    backgrounds: str | None = option(None, "background manifest JSON made by `blurgen assets "
                                           "scan-backgrounds`; null: the built-in demo backgrounds")
    categories: tuple[str, ...] = option((), "category ids (ShapeNet synsets) or names to render; "
                                             "empty: every category of the manifest")
    top_categories: int = option(0, "keep only the K categories with the most usable objects "
                                    "(the paper: 39); 0 keeps all", min=0)
    objects_per_category: int = option(2, "objects drawn (seeded) from each category", min=1)
    skip_objects: int = option(0, "objects skipped at the start of each category's seeded order; a "
                                  "distractor set skips the retrieval set's objects_per_category so "
                                  "the two are disjoint (same seed and manifest)", min=0)
    require_textured: bool = option(True, "skip models without textures (ShapeNet: no images/ folder; "
                                         "scan-meshes: no image and no per-vertex colours)")
    distractor_background_fraction: float = option(
        0.2, "share of the backgrounds (the last ones by id) kept for distractor mode; the retrieval "
             "set uses the rest, so the two never share a background", min=0.0, max=0.9)


@section
class CameraSection:
    width: int = option(320, "image width in pixels", min=16, max=8192)
    height: int = option(240, "image height in pixels", min=16, max=8192)
    focal_mm: float = option(35.0, "focal length in millimetres (horizontal sensor fit)", min=1.0)
    sensor_width_mm: float = option(36.0, "sensor width in millimetres", min=1.0)


@section
class TrajectorySection:
    per_object: int = option(3, "trajectories per object (the paper: 120)", min=1)
    depth: tuple[float, ...] = option((2.0, 3.5), "distance of the object centre in front of the camera, "
                                                  "[min, max] metres", min=0.1, min_len=2)
    object_size: tuple[float, ...] = option((0.6, 1.0), "object size as its bounding-box diagonal, "
                                                        "[min, max] metres", min=0.01, min_len=2)
    translation: tuple[float, ...] = option((0.6, 2.2), "length of the whole trajectory's straight "
                                                        "3D displacement, [min, max] metres", min=0.0, min_len=2)
    rotation_deg: tuple[float, ...] = option((0.0, 180.0), "total rotation about the trajectory's fixed "
                                                           "axis, [min, max] degrees", min=0.0, min_len=2)
    margin: float = option(0.15, "fraction of the image at each border that the object centre stays "
                                 "out of, at every instant", min=0.0, max=0.45)


@section
class ImagesSection:
    max_window: int = option(10, "blurred images average k = 1..max_window consecutive sub-intervals "
                                 "(the paper: up to 10)", min=1, max=NUM_INSTANTS - 1)
    windows: str = option("centred", "which windows of each length: 'centred' on the trajectory (one per "
                                     "k) or 'all' positions", choices=("centred", "all"))
    sharp: bool = option(True, "also write the sharp image at the trajectory centre (window count 0)")
    flow: bool = option(False, "also write exact flow_fwd/flow_bwd/flow_valid between each image's "
                               "window endpoints (from the poses and a per-pixel object-coordinate "
                               "render at each endpoint; the sharp image gets zero flow)")


@section
class CyclesSection:
    device: str = option("CPU", "Cycles device; GPU uses whatever compute backend Blender finds",
                         choices=("CPU", "GPU"))
    samples: int = option(8, "samples per pixel of each sub-interval render; averaging k layers "
                             "averages their noise too", min=1, max=65536)
    adaptive_threshold: float = option(0.0, "Cycles adaptive sampling noise threshold; 0 turns "
                                            "adaptive sampling off", min=0.0, max=1.0)
    denoise: bool = option(False, "run Cycles' denoiser on every render (slow on the CPU: ~2 s each)")
    max_bounces: int = option(4, "light path bounces", min=0, max=128)
    pixel_filter_width: float = option(1.5, "pixel filter width in pixels", min=0.01, max=10.0)
    silhouette_samples: int = option(1, "samples per pixel of the 24 silhouette renders used by the "
                                        "appearance filter", min=1, max=64)


@section
class LabelsSection:
    erosion_px: int = option(3, "erosion of the support (alpha > 0) before blur severity, pixels "
                                "(the paper: 3)", min=0, max=64)
    min_coverage: float = option(0.015, "drop images whose object covers less than this share of the "
                                        "pixels (the paper: 1.5 %)", min=0.0, max=1.0)
    min_iou: float = option(0.2, "drop blurred images whose sharp silhouettes at the window's first and "
                                 "last instants, aligned at their centroids, overlap less (IoU)",
                            min=0.0, max=1.0)
    coverage: str = option("exact", "the alpha the labels (support, severity, level, bbox, truncated, "
                                    "filters) and the shard's `alpha` use: 'exact', the mesh's silhouette "
                                    "rasterised over the exposure and filtered like Cycles' pixels (no "
                                    "samples: the same labels at any cycles.samples); 'render', the colour "
                                    "renders' alpha (reads low at low samples)", choices=("exact", "render"))
    coverage_step_px: float = option(0.5, "exact coverage: most pixels any vertex moves between two of "
                                          "the instants rasterised", min=0.01, max=16.0)
    coverage_supersample: int = option(4, "exact coverage: points per pixel along x and y", min=1, max=16)
    drop_truncated: bool = option(False, "drop images whose object touches the image border (the "
                                         "`truncated` label; the paper names no such filter)")
    max_level: int | None = option(None, "drop images whose blur level exceeds this (the paper's Table 1 "
                                         "holds levels 1-6 only; the paper preset sets 6); null: keep every level",
                                   min=1, max=10)


@section
class SplitSection:
    train: float = option(0.7, "share of each category's objects for training (rounded down)", min=0.0, max=1.0)
    val: float = option(0.15, "share for validation (rounded down); the rest is test", min=0.0, max=1.0)
    queries_per_object: int = option(1, "trajectories of each test object that are queries; the rest "
                                        "form the database (the paper: 20)", min=0)


@section
class FarmSection(TasksSection):
    """The shared task count, and how a task runs Blender (neither changes a sample)."""

    batch_size: int = option(24, "trajectories per Blender process (crash isolation, bounded memory)",
                             min=1, run_only=True)
    timeout_s: float = option(900.0, "a Blender process silent for longer than this is killed and "
                                     "retried once", min=1.0, run_only=True)


@section
class RenderConfig:
    """Everything ``blurgen render`` needs; the same values and seed give the same bytes."""

    seed: int = option(0, "seed of every random choice (objects, splits, trajectories, backgrounds, "
                          "Cycles noise)", min=0)
    mode: str = option("retrieval", "'retrieval': the train/val/test set; 'distractor': objects after "
                                    "the retrieval set's in each category's seeded order, and the "
                                    "disjoint background subset, split 'distractor'",
                       choices=("retrieval", "distractor"))
    assets: AssetsSection = option(doc="where objects and backgrounds come from", default_factory=AssetsSection)
    camera: CameraSection = option(doc="the pinhole camera at the origin", default_factory=CameraSection)
    trajectory: TrajectorySection = option(doc="random 6D trajectories: linear translation, constant "
                                               "angular velocity about a fixed axis, 24 instants",
                                           default_factory=TrajectorySection)
    images: ImagesSection = option(doc="which images each trajectory gives", default_factory=ImagesSection)
    cycles: CyclesSection = option(doc="Blender Cycles settings", default_factory=CyclesSection)
    labels: LabelsSection = option(doc="blur severity and the paper's filters", default_factory=LabelsSection)
    split: SplitSection = option(doc="train/val/test split by object and the query/database roles",
                                 default_factory=SplitSection)
    output: OutputSection = option(doc="shard writing", default_factory=OutputSection)
    farm: FarmSection = option(doc="how the job is cut into tasks and Blender processes",
                               default_factory=FarmSection)
