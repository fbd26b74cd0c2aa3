"""Assets: manifests, ShapeNet, mesh-folder and background scanners, and the built-in demo set.

The public names are imported lazily (PEP 562), so that importing a light submodule such as
``blurgen.assets.config`` (the CLI does, at start-up) does not pull in OpenCV and the generators.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AssetManifest": "blurgen.assets.manifest",
    "DemoAssets": "blurgen.assets.demo",
    "DemoAssetsConfig": "blurgen.assets.config",
    "demo_assets": "blurgen.assets.demo",
    "make_demo_assets": "blurgen.assets.demo",
    "scan_backgrounds": "blurgen.assets.backgrounds_scan",
    "scan_meshes": "blurgen.assets.mesh_scan",
    "scan_shapenet": "blurgen.assets.shapenet_scan",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'blurgen.assets' has no attribute {name!r}")
