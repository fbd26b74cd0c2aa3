"""``blurgen composite``: six kinds of physically motivated 2D blur on segmented photo regions."""

import click


@click.command()
def composite() -> None:
    """2D masked motion blur of six kinds on segmented photo regions (being built: issue 4)."""
    raise click.UsageError("blurgen composite is not available yet")
