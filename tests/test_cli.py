"""The command line's contract: version, one-line errors with status 2, tracebacks only with --debug."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from blurgen import __version__
from blurgen.cli import main


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def test_version():
    result = run("--version")
    assert result.exit_code == 0 and result.output.strip() == f"blurgen, version {__version__}"


def test_groups_are_present():
    result = run("--help")
    for group in ("render", "composite", "flowpairs", "shards", "assets"):
        assert f"  {group} " in result.output


def test_config_error_is_one_line_with_status_2(tmp_path):
    result = run("assets", "demo", "--out", str(tmp_path / "d"), "--set", "sede=3")
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        "blurgen: error: unknown config key 'sede' (did you mean 'seed'?); allowed here: "
        + result.output.split("allowed here: ")[1].strip()]
    assert not (tmp_path / "d").exists()  # nothing half-written


def test_print_config_shows_documented_yaml():
    result = run("assets", "demo", "--print-config", "--set", "seed=5")
    assert result.exit_code == 0
    assert "seed: 5  # " in result.output


def test_missing_path_is_one_line_and_debug_shows_the_traceback(tmp_path):
    missing = tmp_path / "nowhere"
    plain = subprocess.run([sys.executable, "-m", "blurgen", "shards", "info", str(missing)],
                           capture_output=True, text=True)
    assert plain.returncode == 2
    assert len(plain.stderr.strip().splitlines()) == 1 and "nowhere" in plain.stderr
    assert "Traceback" not in plain.stderr
    debug = subprocess.run([sys.executable, "-m", "blurgen", "--debug", "shards", "info", str(missing)],
                           capture_output=True, text=True)
    assert debug.returncode != 0 and "Traceback" in debug.stderr
