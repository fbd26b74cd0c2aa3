"""Config resolution: precedence, types, limits, and one-line errors that name the key."""

from __future__ import annotations

import json

import pytest
import yaml

from blurgen.config import build, option, parse_overrides, resolve_config, section, to_dict, to_json, to_yaml
from blurgen.errors import ConfigError


@section
class Cycles:
    samples: int = option(4, "Cycles samples per pixel", min=1, max=4096)
    device: str = option("cpu", "render device", choices=("cpu", "gpu"))


@section
class Job:
    seed: int = option(0, "job seed", min=0)
    size: tuple[int, ...] = option((320, 240), "image width and height in pixels", min=1, min_len=2)
    ratio: float = option(0.5, "a fraction", min=0.0, max=1.0)
    name: str | None = option(None, "optional name")
    synsets: tuple[str, ...] = option((), "ShapeNet synset ids")
    flow: bool = option(False, "also write flow")
    extent: tuple[float, ...] = option((1.0, 4.0), "blur extent range, pixels", min=0.0, span=True)
    cycles: Cycles = option(doc="Cycles settings", default_factory=Cycles)


def resolve(*sets: str, config_file=None) -> Job:
    return resolve_config(Job, "test", preset=None, config_file=config_file, overrides=sets)


def test_defaults_fill_every_field():
    job = resolve()
    assert job == Job()
    assert job.cycles.samples == 4 and job.size == (320, 240) and job.name is None


def test_set_overrides_parse_yaml_scalars_and_nested_keys():
    job = resolve("seed=7", "cycles.samples=16", "size=[64, 48]", "ratio=1", "name=demo", "flow=true",
                  "synsets=[03001627, '04379243']")
    assert job.seed == 7 and job.cycles.samples == 16 and job.size == (64, 48)
    assert job.ratio == 1.0 and isinstance(job.ratio, float)
    assert job.name == "demo" and job.flow is True
    # plain YAML would read 03001627 as the octal number 799639: a zero-padded id stays text
    assert job.synsets == ("03001627", "04379243")


def test_file_then_set_precedence(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("seed: 3\ncycles:\n  samples: 64\n  device: gpu\n")
    job = resolve("cycles.samples=8", config_file=path)
    assert (job.seed, job.cycles.samples, job.cycles.device) == (3, 8, "gpu")


@pytest.mark.parametrize("override, fragment", [
    ("cycles.sampels=3", "unknown config key 'cycles.sampels' (did you mean 'cycles.samples'?)"),
    ("sede=1", "unknown config key 'sede' (did you mean 'seed'?)"),
    ("seed=abc", "config key 'seed' must be an integer, got 'abc'"),
    ("seed=true", "config key 'seed' must be an integer, got True"),
    ("seed=-1", "config key 'seed' must be >= 0, got -1"),
    ("cycles.samples=0", "config key 'cycles.samples' must be >= 1 and <= 4096, got 0"),
    ("ratio=1.5", "config key 'ratio' must be >= 0.0 and <= 1.0, got 1.5"),
    ("cycles.device=gpus", "config key 'cycles.device' is 'gpus'; allowed: cpu, gpu (did you mean 'gpu'?)"),
    ("size=[64]", "config key 'size' needs at least 2 item(s), got 1"),
    ("size=[64, 0]", "config key 'size[1]' must be >= 1, got 0"),
    ("extent=[5, 2]", "config key 'extent' must be a range [min, max] with min <= max, got [5.0, 2.0]"),
    ("extent=[1, 2, 3]", "config key 'extent' must be a range [min, max] with min <= max"),
    ("extent=[-1, 2]", "config key 'extent[0]' must be >= 0.0, got -1.0"),
    ("cycles=5", "section 'cycles' must be a mapping"),
    ("seed", "--set expects key=value, got 'seed'"),
])
def test_bad_values_are_refused_with_one_line_naming_the_key(override, fragment):
    with pytest.raises(ConfigError) as info:
        resolve(override)
    message = str(info.value)
    assert fragment in message
    assert "\n" not in message


def test_zero_padded_ids_in_a_file_stay_text(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("synsets: [03001627, 02691156]\nseed: 0012\n")
    with pytest.raises(ConfigError, match="config key 'seed' must be an integer, got '0012'"):
        resolve(config_file=path)
    path.write_text("synsets: [03001627, 02691156]\nseed: 12\n")
    assert resolve(config_file=path).synsets == ("03001627", "02691156")


def test_exponents_without_a_dot_are_numbers(tmp_path):
    # YAML 1.1 (PyYAML) reads 1e-3 as text; users write learning rates that way, on the command
    # line and in files. The values are Python's own float() of the same text.
    assert resolve("ratio=1e-3").ratio == float("1e-3")
    assert resolve("extent=[2E0, 3e+1]").extent == (float("2E0"), float("3e+1"))
    path = tmp_path / "job.yaml"
    path.write_text("ratio: -5e-1\n")
    with pytest.raises(ConfigError, match=r"'ratio' must be >= 0.0 and <= 1.0, got -0.5"):
        resolve(config_file=path)
    path.write_text("ratio: 5e-1\nsynsets: [03001627]\n")
    job = resolve(config_file=path)
    assert job.ratio == 0.5 and job.synsets == ("03001627",)  # zero-padded ids stay text
    assert parse_overrides(["a=1e3", "b=1.5", "c=e5", "d=1e"]) == {"a": 1000.0, "b": 1.5, "c": "e5", "d": "1e"}


def test_bad_yaml_file_names_the_line(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text("seed: 1\ncycles: [unclosed\n")
    with pytest.raises(ConfigError, match=r"broken.yaml is not valid YAML at line \d"):
        resolve(config_file=path)
    with pytest.raises(ConfigError, match="config file not found"):
        resolve(config_file=tmp_path / "absent.yaml")
    (tmp_path / "list.yaml").write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="must be a mapping"):
        resolve(config_file=tmp_path / "list.yaml")


def test_unknown_preset_is_refused():
    with pytest.raises(ConfigError, match="unknown preset 'nope' for test"):
        resolve_config(Job, "test", preset="nope")


def test_printed_yaml_documents_every_field_and_reads_back_to_the_same_config():
    job = resolve("seed=11", "cycles.device=gpu", "synsets=['02691156']")
    text = to_yaml(job)
    assert "seed: 11  # job seed" in text
    assert "  samples: 4  # Cycles samples per pixel" in text
    assert all("  # " in line for line in text.splitlines())
    assert build(Job, yaml.safe_load(text)) == job


def test_json_is_canonical():
    job = resolve("seed=2")
    assert json.loads(to_json(job)) == to_dict(job)
    assert to_dict(job)["cycles"] == {"samples": 4, "device": "cpu"}
    # canonical: keys sorted at every level (the schema declares cycles' samples before device),
    # no spaces, whatever order the values were given in
    text = to_json(job)
    assert '"cycles":{"device":"cpu","samples":4}' in text and " " not in text
    keys = list(json.loads(text))
    assert keys == sorted(keys)
    assert to_json(resolve("cycles.device=cpu", "seed=2")) == text


def test_mapping_overrides_from_python():
    job = resolve_config(Job, "test", preset=None, overrides={"cycles": {"samples": 2}})
    assert job.cycles.samples == 2


def test_parse_overrides_rejects_a_value_that_is_also_a_section():
    with pytest.raises(ConfigError, match="set both as a value and as a section"):
        parse_overrides(["a=1", "a.b=2"])


def test_every_option_needs_documentation():
    with pytest.raises(ValueError, match="doc"):
        option(1)
