"""The ``blurgen`` command line: thin click commands over the package's Python functions."""

from blurgen.cli.main import main

__all__ = ["main"]
