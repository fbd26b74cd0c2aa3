"""A wheel install carries everything the package needs besides code."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.slow  # builds a wheel


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(out)], check=True, cwd=out)
    (path,) = out.glob("blurgen-*.whl")
    return path


def test_wheel_contains_blender_scripts_manifests_and_presets(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for source, target in [("blender_scripts", "blurgen/_blender_scripts"),
                           ("assets_manifest", "blurgen/_assets_manifest"),
                           ("blurgen/config/presets", "blurgen/config/presets")]:
        shipped = sorted(p.name for p in (ROOT / source).iterdir()
                         if p.suffix in {".py", ".json", ".yaml", ".md"})
        assert shipped, source
        missing = [name for name in shipped if f"{target}/{name}" not in names]
        assert missing == [], f"{source} files missing from the wheel: {missing}"
    entry_points = next(n for n in names if n.endswith("entry_points.txt"))
    assert "blurgen = blurgen.cli:main" in zipfile.ZipFile(wheel).read(entry_points).decode()


def test_installed_wheel_finds_its_resources_outside_the_source_tree(wheel, tmp_path):
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from blurgen.resources import blender_scripts_dir, assets_manifest_dir;"
            "print(blender_scripts_dir()); print(assets_manifest_dir())")
    env = {**os.environ, "PYTHONPATH": str(site)}
    out = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, check=True,
                         capture_output=True, text=True).stdout.split()
    assert out == [str(site / "blurgen" / "_blender_scripts"), str(site / "blurgen" / "_assets_manifest")]

