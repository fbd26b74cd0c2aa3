"""Command groups of the generators.

Their commands arrive with the generators themselves (composite: issue 4, flowpairs: issue 5);
until then each group only documents what it will hold, so that ``blurgen --help`` shows the
whole shape of the tool.
"""

import click


@click.group(no_args_is_help=True)
def composite() -> None:
    """2D masked motion blur of six kinds on segmented photo regions (not yet available)."""


@click.group(no_args_is_help=True)
def flowpairs() -> None:
    """Frame-averaged blur paired with optical flow (not yet available)."""
