"""Where the files that ship beside the code are: Blender scripts and asset manifests.

In the repository they live at the top level (``blender_scripts/``, ``assets_manifest/``); an
install (wheel or editable) maps them into the package as ``blurgen._blender_scripts`` and
``blurgen._assets_manifest`` (see setup.cfg). Running from a plain source checkout, the
mapping does not exist and the top-level folders are used.
"""

from __future__ import annotations

import importlib
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[1]


def _folder(package: str, source_name: str) -> Path:
    try:
        module = importlib.import_module(package)
    except ImportError:
        return _SOURCE_ROOT / source_name
    return Path(module.__file__).resolve().parent


def blender_scripts_dir() -> Path:
    """Folder of the scripts that run inside Blender."""
    return _folder("blurgen._blender_scripts", "blender_scripts")


def assets_manifest_dir() -> Path:
    """Folder of the shipped asset manifests (JSON)."""
    return _folder("blurgen._assets_manifest", "assets_manifest")
