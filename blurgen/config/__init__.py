"""Config schemas, presets and their resolution (defaults <- preset <- file <- --set)."""

from blurgen.config.loader import (
    build,
    load_preset,
    parse_overrides,
    preset_names,
    resolve_config,
    to_dict,
    to_json,
    to_yaml,
)
from blurgen.config.schema import option, section

__all__ = ["build", "load_preset", "option", "parse_overrides", "preset_names", "resolve_config",
           "section", "to_dict", "to_json", "to_yaml"]
