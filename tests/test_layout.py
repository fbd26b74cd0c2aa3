"""The package layout matches what setup.cfg ships."""

from __future__ import annotations

import configparser
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_subpackage_is_listed_in_setup_cfg():
    """setup.cfg lists packages explicitly (for its package_dir mapping): a new one must be added."""
    parser = configparser.ConfigParser()
    parser.read(ROOT / "setup.cfg")
    listed = set(parser["options"]["packages"].split())
    found = {".".join(p.parent.relative_to(ROOT).parts) for p in (ROOT / "blurgen").rglob("__init__.py")}
    assert found - listed == set(), "add these to [options] packages in setup.cfg"
