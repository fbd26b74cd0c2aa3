"""Resolving a config: defaults <- preset <- YAML file <- ``--set key=value`` overrides.

The result is a validated, frozen dataclass. Every refusal is a :class:`ConfigError` whose one
line names the dotted key and what is allowed, with a "did you mean" for misspelt keys.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import re
import types
import typing
from importlib import resources
from pathlib import Path
from typing import Any, Mapping, Sequence, TypeVar

import yaml

from blurgen.errors import ConfigError

C = TypeVar("C")

PRESET_PACKAGE = "blurgen.config.presets"


class _ConfigYamlLoader(yaml.SafeLoader):
    """YAML 1.1 with two changes: a number with a leading zero stays text, and an exponent
    without a dot is a number.

    ShapeNet synset ids look like numbers; plain YAML reads ``03001627`` as the octal integer
    799639, which would silently name another category. And YAML 1.1 reads ``1e-3`` as text
    (its floats need a dot: ``1.0e-3``), so ``--set train.lr=1e-3`` was refused as "not a
    number"; YAML 1.2 and every other reader of numbers take it.
    """


def _int_or_zero_padded_text(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> Any:
    text = loader.construct_scalar(node)
    if re.fullmatch(r"[-+]?0[0-9_]+", str(text)):
        return str(text)
    return yaml.SafeLoader.construct_yaml_int(loader, node)


_ConfigYamlLoader.add_constructor("tag:yaml.org,2002:int", _int_or_zero_padded_text)
_ConfigYamlLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"), list("-+0123456789"))


def _load_yaml(text: str) -> Any:
    return yaml.load(text, Loader=_ConfigYamlLoader)  # noqa: S506 - a SafeLoader subclass


# ----------------------------------------------------------------------------- sources


def preset_names(kind: str) -> list[str]:
    """Names of the built-in presets for a config kind (files ``presets/<kind>-<name>.yaml``)."""
    folder = resources.files(PRESET_PACKAGE)
    prefix = f"{kind}-"
    return sorted(p.name[len(prefix):-len(".yaml")] for p in folder.iterdir()
                  if p.name.startswith(prefix) and p.name.endswith(".yaml"))


def load_preset(kind: str, name: str) -> dict[str, Any]:
    """The overrides a built-in preset makes over the schema defaults."""
    names = preset_names(kind)
    if name not in names:
        raise ConfigError(f"unknown preset '{name}' for {kind}{_did_you_mean(name, names)}; "
                          f"available: {', '.join(names) or 'none'}")
    text = resources.files(PRESET_PACKAGE).joinpath(f"{kind}-{name}.yaml").read_text("utf-8")
    return _as_mapping(_load_yaml(text), f"preset '{name}'")


def load_yaml_file(path: str | Path) -> dict[str, Any]:
    """A user's YAML config file as a mapping (an empty file is an empty mapping)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file not found: {path}")
    try:
        data = _load_yaml(path.read_text("utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"config file {path} is not valid YAML{where}") from None
    return _as_mapping(data, f"config file {path}")


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["a.b=3", "c=[1, 2]"]`` -> ``{"a": {"b": 3}, "c": [1, 2]}``; values are YAML scalars."""
    result: dict[str, Any] = {}
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        try:
            value = _load_yaml(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw  # not YAML: keep the text, validation says whether a string fits
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is set both as a value and as a section")
        node[parts[-1]] = value
    return result


def merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Deep merge: mappings merge key by key, anything else in ``update`` replaces."""
    out = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = merge(out[key], value)
        else:
            out[key] = value
    return out


def resolve_config(
    schema: type[C],
    kind: str,
    *,
    preset: str | None = "default",
    config_file: str | Path | None = None,
    overrides: Sequence[str] | Mapping[str, Any] = (),
) -> C:
    """Build a validated config of type ``schema``.

    Precedence, lowest first: the schema's defaults, the built-in ``preset`` (if any), the YAML
    ``config_file`` (if any), then ``overrides`` (``--set`` strings, or a nested mapping when
    called from Python).
    """
    data: dict[str, Any] = {}
    if preset is not None:
        data = merge(data, load_preset(kind, preset))
    if config_file is not None:
        data = merge(data, load_yaml_file(config_file))
    if isinstance(overrides, Mapping):
        data = merge(data, overrides)
    else:
        data = merge(data, parse_overrides(overrides))
    return build(schema, data)


# ----------------------------------------------------------------------------- validation


def build(schema: type[C], data: Mapping[str, Any], prefix: str = "") -> C:
    """Validate ``data`` against ``schema`` and construct it; missing keys take defaults."""
    data = _as_mapping(data, f"section '{prefix.rstrip('.')}'" if prefix else "config")
    fields = {f.name: f for f in dataclasses.fields(schema)}
    hints = typing.get_type_hints(schema)
    for key in data:
        if key not in fields:
            full = prefix + str(key)
            raise ConfigError(f"unknown config key '{full}'{_did_you_mean(str(key), fields, prefix)}; "
                              f"allowed here: {', '.join(fields)}")
    values = {}
    for name, field in fields.items():
        key = prefix + name
        tp = hints[name]
        if dataclasses.is_dataclass(tp):
            values[name] = build(tp, data.get(name, {}) or {}, key + ".")
        elif name in data:
            values[name] = _check_value(key, data[name], tp, field.metadata)
        elif field.default is not dataclasses.MISSING or field.default_factory is not dataclasses.MISSING:
            continue  # the dataclass supplies its default
        else:
            raise ConfigError(f"config key '{key}' is required: {field.metadata.get('doc', '')}")
    return schema(**values)


def _check_value(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _check_value(key, value, inner, meta)
    if origin in (list, tuple):
        item_tp = args[0] if args else Any
        if not isinstance(value, (list, tuple)):
            value = [value]  # a single value where a list is expected: a list of one
        items = tuple(_check_scalar(f"{key}[{i}]", v, item_tp, meta) for i, v in enumerate(value))
        if meta.get("min_len") is not None and len(items) < meta["min_len"]:
            raise ConfigError(f"config key '{key}' needs at least {meta['min_len']} item(s), got {len(items)}")
        if meta.get("span") and (len(items) != 2 or items[0] > items[1]):
            raise ConfigError(f"config key '{key}' must be a range [min, max] with min <= max, "
                              f"got {list(items)}")
        return items
    return _check_scalar(key, value, tp, meta)


_TYPE_WORDS = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}


def _check_scalar(key: str, value: Any, tp: Any, meta: Mapping[str, Any]) -> Any:
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if tp is str and isinstance(value, (int, float)) and not isinstance(value, bool):
        value = str(value)  # e.g. a ShapeNet synset id written without quotes
    ok = isinstance(value, tp) if tp in _TYPE_WORDS else True
    if tp is int and isinstance(value, bool):
        ok = False  # bool is an int in Python, never in a config
    if not ok:
        raise ConfigError(f"config key '{key}' must be {_TYPE_WORDS[tp]}, got {value!r}")
    choices = meta.get("choices")
    if choices and value not in choices:
        raise ConfigError(f"config key '{key}' is {value!r}; allowed: {', '.join(map(str, choices))}"
                          f"{_did_you_mean(str(value), [str(c) for c in choices])}")
    lo, hi = meta.get("min"), meta.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = " and ".join(b for b in (f">= {lo}" if lo is not None else "",
                                              f"<= {hi}" if hi is not None else "") if b)
            raise ConfigError(f"config key '{key}' must be {bounds}, got {value!r}")
    return value


def _did_you_mean(word: str, candidates: Any, prefix: str = "") -> str:
    close = difflib.get_close_matches(word, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{prefix}{close[0]}'?)" if close else ""


def _as_mapping(data: Any, what: str) -> dict[str, Any]:
    if data is None:
        return {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{what} must be a mapping of keys to values, got {type(data).__name__}")
    return dict(data)


# ----------------------------------------------------------------------------- output


def to_dict(config: Any) -> dict[str, Any]:
    """The config as plain nested dicts and lists (JSON/YAML-ready)."""
    def plain(v: Any) -> Any:
        if dataclasses.is_dataclass(v):
            return {f.name: plain(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v
    return plain(config)


def to_json(config: Any) -> str:
    """Canonical JSON of the resolved config (sorted keys): what shards store."""
    return json.dumps(to_dict(config), sort_keys=True, separators=(",", ":"))


def to_yaml(config: Any) -> str:
    """The resolved config as YAML, each field followed by its documentation as a comment."""
    lines: list[str] = []

    def emit(obj: Any, indent: int) -> None:
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            pad = "  " * indent
            doc = f.metadata.get("doc", "")
            if f.metadata.get("run_only"):
                doc += " [run-only: a re-run into the same folder may change it]"
            if dataclasses.is_dataclass(value):
                lines.append(f"{pad}{f.name}:" + (f"  # {doc}" if doc else ""))
                emit(value, indent + 1)
                continue
            if isinstance(value, tuple):
                value = list(value)
            text = yaml.safe_dump(value, default_flow_style=True, width=10_000).strip()
            text = text.removesuffix("\n...").removesuffix("...").strip()
            lines.append(f"{pad}{f.name}: {text}" + (f"  # {doc}" if doc else ""))

    emit(config, 0)
    return "\n".join(lines) + "\n"
