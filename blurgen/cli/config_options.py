"""The config options every configurable command shares: --preset, --config, --set, --print-config."""

from __future__ import annotations

import functools
from typing import Any, Callable

import click

from blurgen.config import preset_names, resolve_config, to_yaml


def config_options(kind: str, schema: type, default_preset: str = "default"
                   ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Add the config options to a click command; the command receives the resolved ``config``.

    With ``--print-config`` the resolved config is printed as documented YAML and the command
    does nothing else.
    """
    def decorate(command: Callable[..., Any]) -> Callable[..., Any]:
        @click.option("--preset", default=default_preset, show_default=True,
                      type=click.Choice(preset_names(kind)), help="Built-in preset the config starts from.")
        @click.option("--config", "config_file", type=click.Path(dir_okay=False),
                      help="YAML file with config values (over the preset).")
        @click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
                      help="Override one config value (dotted keys for nested values); repeatable.")
        @click.option("--print-config", is_flag=True, help="Print the resolved config and exit.")
        @functools.wraps(command)
        def wrapper(preset: str, config_file: str | None, overrides: tuple[str, ...],
                    print_config: bool, **kwargs: Any) -> Any:
            config = resolve_config(schema, kind, preset=preset, config_file=config_file,
                                    overrides=overrides)
            if print_config:
                click.echo(to_yaml(config), nl=False)
                return None
            return command(config=config, **kwargs)
        return wrapper
    return decorate
