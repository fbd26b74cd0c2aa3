"""The ``blurgen`` click group and its error policy.

A :class:`~blurgen.errors.BlurgenError` (something the user can fix) and the usual file errors
print one line on stderr and exit with status 2; ``--debug`` shows the traceback instead.
Any other exception is a bug in blurgen and keeps its traceback.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from blurgen import __version__
from blurgen.cli.assets_cmd import assets
from blurgen.cli.composite_cmd import composite
from blurgen.cli.flowpairs_cmd import flowpairs
from blurgen.cli.render_cmd import render
from blurgen.cli.shards_cmd import shards
from blurgen.cli.train_cmd import evaluate, train
from blurgen.errors import BlurgenError


class _BlurgenGroup(click.Group):
    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (BlurgenError, OSError) as exc:  # OSError: a path, a full disk, a lock, ...
            if ctx.obj and ctx.obj.get("debug"):
                raise
            click.echo(f"blurgen: error: {_one_line(exc)}", err=True)
            sys.exit(2)


def _one_line(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.filename is not None and not isinstance(exc, BlurgenError):
        return f"{exc.strerror or type(exc).__name__}: {exc.filename}"
    return " ".join(str(exc).split())


@click.group(cls=_BlurgenGroup, context_settings={"help_option_names": ["-h", "--help"],
                                                   "max_content_width": 100})
@click.version_option(__version__, prog_name="blurgen")
@click.option("--debug", is_flag=True, help="Show Python tracebacks for errors.")
@click.pass_context
def main(ctx: click.Context, debug: bool) -> None:
    """blurgen: motion-blur training data from Blender renders, masked 2D blur and flow pairs."""
    ctx.ensure_object(dict)
    ctx.obj["debug"] = debug


for _command in (render, composite, flowpairs, shards, assets, train, evaluate):
    main.add_command(_command)

import blurgen.cli.train_flow_cmd  # noqa: E402,F401  registers train flow and evaluate flow
import blurgen.cli.train_blurseg_cmd  # noqa: E402,F401  registers train blur-seg and evaluate blur-seg
