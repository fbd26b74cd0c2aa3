import click


@click.group()
def assets() -> None:
    """Scan ShapeNet and background folders; make the built-in demo assets."""
