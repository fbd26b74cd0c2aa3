import click


@click.group()
def shards() -> None:
    """Inspect, verify and preview HDF5 shards."""
