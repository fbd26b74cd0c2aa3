"""Which object and background manifests a render job reads: the configured ones or the demo set's.

Loading is kept out of planning (:mod:`blurgen.render.plan` is pure: manifests in, work items
out), so that a plan can be made from manifests built in memory.
"""

from __future__ import annotations

from pathlib import Path

from blurgen.assets import AssetManifest
from blurgen.errors import BlurgenError
from blurgen.render.config import RenderConfig


def load_manifests(config: RenderConfig) -> tuple[AssetManifest, AssetManifest]:
    """The configured object and background manifests, or the built-in demo set's."""
    if config.assets.objects is None or config.assets.backgrounds is None:
        from blurgen.assets import demo_assets  # makes the demo set on first use: only when needed

        demo = demo_assets()
    objects = (AssetManifest.load(_existing(config.assets.objects, "assets.objects"))
               if config.assets.objects is not None else demo.objects_manifest())
    backgrounds = (AssetManifest.load(_existing(config.assets.backgrounds, "assets.backgrounds"))
                   if config.assets.backgrounds is not None else demo.backgrounds_manifest())
    return objects, backgrounds


def _existing(path: str, key: str) -> Path:
    if not Path(path).is_file():
        raise BlurgenError(f"{key}: manifest file not found: {path} (make one with blurgen assets scan-...)")
    return Path(path)
