"""Config of the demo asset set (config kind ``assets_demo``)."""

from __future__ import annotations

from blurgen.assets.demo_objects import TEMPLATES
from blurgen.config import option, section

KIND = "assets_demo"


@section
class DemoAssetsConfig:
    """What ``blurgen assets demo`` makes; the same values always make the same bytes."""

    seed: int = option(0, "seed of every random choice (shapes, textures, backgrounds, ids)", min=0)
    categories: int = option(6, "number of object categories, taken in template order (airplane, bottle, "
                                "car, chair, mug, table, lamp, sofa)", min=1, max=len(TEMPLATES))
    objects_per_category: int = option(5, "objects made per category", min=1, max=1000)
    texture_size: int = option(256, "width and height of each object's texture PNG in pixels", min=16, max=4096)
    backgrounds: int = option(12, "number of landscape background JPEGs", min=0, max=100_000)
    background_width: int = option(640, "background width in pixels", min=64, max=8192)
    background_height: int = option(480, "background height in pixels", min=48, max=8192)
    jpeg_quality: int = option(92, "JPEG quality of the backgrounds", min=50, max=100)
    preview: bool = option(True, "also write preview.png, a contact sheet of the objects and backgrounds")
