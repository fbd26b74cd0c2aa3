"""``blurgen flowpairs``: frame-averaged blur paired with optical flow."""

import click


@click.group(no_args_is_help=True)
def flowpairs() -> None:
    """Frame-averaged blur paired with optical flow (being built: issue 5)."""
