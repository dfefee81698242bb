"""Reading and writing config values: dotted keys, command-line strings coerced to field types, YAML."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from pathlib import Path
from typing import Any

import yaml

from ..errors import ConfigError, MissingPathError
from .fields import VERSION, Config

BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}

def load_yaml(path: str | Path, what: str = "config file",
              holds: str = "a mapping of sections (model, data, train)") -> dict[str, Any]:
    """Read a YAML file that `holds` a mapping (by default a config like RUN/config.yaml); `what` names it in
    errors."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{what} {path} is a folder; expected a YAML file")
    if not path.is_file():
        raise MissingPathError(f"{what} {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except UnicodeDecodeError:
        raise ConfigError(f"{what} {path} is not a text file; expected YAML") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{what} {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{what} {path} must hold {holds}")
    return data


def update(cfg: Config, values: dict[str, Any], source: str) -> None:
    """Set every key of the nested mapping `values` on `cfg`; `source` names where they came from in errors."""
    items = _flatten(values)
    for key, value in items:
        set_value(cfg, key, value, source)
    one_length(cfg, dict(items))


def one_length(cfg: Config, layer: dict[str, Any]) -> None:
    """After a config layer (dotted key -> value) that sets train.steps or train.epochs but not both, clear the
    other: the run's length is the one set last."""
    if "train.epochs" in layer and "train.steps" not in layer:
        cfg.train.steps = 0
    elif "train.steps" in layer and "train.epochs" not in layer:
        cfg.train.epochs = 0


def set_value(cfg: Config, key: str, value: Any, source: str = "--set") -> None:
    """Set the dotted `key` (e.g. `train.lr_g`) from a typed value or a command-line string."""
    node: Any = cfg
    parts = key.split(".")
    for i, part in enumerate(parts):
        names = [f.name for f in dataclasses.fields(node)]
        if part not in names:
            prefix = ".".join(parts[:i] + [""])
            known = [prefix + n for n in names]
            hint = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(f"{source}: unknown config key '{key}'" + (f" (did you mean {hint[0]}?)" if hint else ""))
        if i < len(parts) - 1:
            node = getattr(node, part)
            if not dataclasses.is_dataclass(node):
                raise ConfigError(f"{source}: '{'.'.join(parts[: i + 1])}' has no sub-keys")
    field_type = typing.get_type_hints(type(node))[parts[-1]]
    if dataclasses.is_dataclass(field_type):
        example = dataclasses.fields(field_type)[0].name
        raise ConfigError(f"{source}: '{key}' is a section; set one of its keys, e.g. {key}.{example}")
    setattr(node, parts[-1], _coerce(value, field_type, key, source))


def parse_assignment(text: str) -> tuple[str, str]:
    """Split a `--set key=value` argument."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set expects key=value (e.g. train.lr_g=2e-4), got '{text}'")
    return key.strip(), value.strip()


def to_dict(cfg: Config) -> dict[str, Any]:
    return dataclasses.asdict(cfg)


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a config recorded by `to_dict` (a checkpoint or config.yaml), of any version."""
    cfg = Config()
    update(cfg, upgrade(values), source="recorded config")
    return cfg


def upgrade(values: dict[str, Any]) -> dict[str, Any]:
    """A recorded config of an older version (fields.VERSION) in today's terms, meaning what it meant then."""
    if values.get("version", 1) >= VERSION:
        return values
    values = copy.deepcopy(values) | {"version": VERSION}
    model, train = values.setdefault("model", {}), values.setdefault("train", {})
    if model.get("attention", "paper") == "paper":  # version 1's default and name for the popular PyTorch block
        model["attention"] = "popular"
    if train.get("loss", "hinge") != "wgan-gp":  # version 1 ignored its gp_weight, which defaulted to 10
        train["gp_weight"] = 0.0
    return values


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def get_value(cfg: Config, key: str) -> Any:
    node: Any = cfg
    for part in key.split("."):
        node = getattr(node, part)
    return node


def _flatten(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    items = []
    for key, value in values.items():
        if isinstance(value, dict):
            items += _flatten(value, f"{prefix}{key}.")
        else:
            items.append((f"{prefix}{key}", value))
    return items


def _coerce(value: Any, field_type: Any, key: str, source: str) -> Any:
    """Convert `value` (typed, from YAML, or a string from the command line) to `field_type`."""
    expected = {int: "an integer", float: "a number", bool: "true or false", str: "a string",
                list[int]: "a list of integers like [16,32]", list[str]: "a list of names like [fid,is]",
                str | None: "a string or none", bool | None: "true, false or auto", float | None: "a number or auto"}
    fail = ConfigError(f"{source}: {key} expects {expected[field_type]}, got '{value}'")
    text = value.strip() if isinstance(value, str) else None
    if isinstance(field_type, types.UnionType):  # X | None: None (auto, decided later), or a value of X
        if value is None or (text is not None and text.lower() in ("auto", "none", "null", "")):
            return None
        field_type = next(arg for arg in typing.get_args(field_type) if arg is not type(None))
        if field_type is str:  # a path given as a Path, say
            return str(value)
    if field_type is bool:
        if isinstance(value, bool):
            return value
        if text is not None and text.lower() in BOOL_WORDS:
            return BOOL_WORDS[text.lower()]
        raise fail
    if field_type is int:
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            raise fail
        try:
            return int(value.replace("_", "")) if text is not None else value
        except ValueError:
            raise fail from None
    if field_type is float:
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise fail
        try:
            return float(value)
        except ValueError:
            raise fail from None
    if field_type in (list[int], list[str]):
        if text is not None:
            if text.startswith(("[", "(")) != text.endswith(("]", ")")):  # an unclosed list is a typing slip
                raise fail
            text = text.strip("[]() ")
            value = [part for part in text.replace(",", " ").split()] if text else []
        if not isinstance(value, (list, tuple)):
            raise fail
        try:
            return [_coerce(v, typing.get_args(field_type)[0], key, source) for v in value]
        except ConfigError:
            raise fail from None
    if not isinstance(value, str):
        raise fail
    return value
