"""Typed run configuration: dataclasses, named presets, and the one resolution and validation of a run's options.

`resolve` applies, in order: dataclass defaults (the paper's recipe) -> a preset, or the config recorded by the run
being resumed -> a YAML file -> flags -> `--set key=value` overrides, then `validate` checks the whole config before
any data or network is loaded. Valid choices come from the registries that define them. The resolved config is
written to `RUN/config.yaml` and stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import typing
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .. import data
from ..errors import ConfigError
from ..losses import gp_weight
from .fields import DATA_READ_FIELDS, VERSION, Config, DataConfig, EvalConfig, ModelConfig, TrainConfig, dataset_options
from .presets import PRESETS, preset
from .validation import CHOICES, SCOPES, check_environment, validate
from .values import (
    from_dict,
    get_value,
    load_yaml,
    one_length,
    parse_assignment,
    set_value,
    to_dict,
    to_yaml,
    update,
    upgrade,
)

__all__ = [
    "CHOICES",
    "DATA_READ_FIELDS",
    "PRESETS",
    "SCOPES",
    "Config",
    "DataConfig",
    "EvalConfig",
    "ModelConfig",
    "TrainConfig",
    "check_environment",
    "check_resumable",
    "data_flags",
    "dataset_options",
    "from_dict",
    "get_value",
    "load_yaml",
    "one_length",
    "parse_assignment",
    "preset",
    "resolve",
    "resumable_keys",
    "set_value",
    "to_dict",
    "to_yaml",
    "update",
    "upgrade",
    "validate",
]


def resolve(preset_name: str | None = None, file: str | Path | None = None, flags: Mapping[str, Any] | None = None,
            sets: Sequence[str] = (), resume: Mapping[str, Any] | None = None, scope: str = "run") -> Config:
    """The validated config of a run: the preset (default: paper when `flags` name a dataset, else demo), or with
    `resume` the config a run recorded, then the
    YAML `file`, then `flags` (config key -> value), then `sets` ('key=value' strings). With `resume` only the
    resumable fields may change. `scope` (validation.SCOPES) says what the config is for: with "data", only data.*
    keys may be set and only the data section is validated."""
    if resume is not None:
        if preset_name or file:
            raise ConfigError("--resume continues a run with its recorded config: --preset and --config do not apply")
        cfg = from_dict(resume)
    else:
        # A dataset without a preset trains the paper's recipe on it, never the demo's tiny networks.
        cfg = preset(preset_name or ("paper" if "data.name" in (flags or {}) else "demo"))
    if file:
        values = load_yaml(file)
        if "preset" in values and "version" not in values:
            warnings.warn(f"{file} is the config.yaml of a run from before config version {VERSION}: read as it was "
                          f"meant then (attention 'paper' is now called 'popular'; gp_weight acted only with wgan-gp)")
            values = upgrade(values)
        update(cfg, values, source=str(file))
    for key, value in (flags or {}).items():
        set_value(cfg, key, value, source=key)
    one_length(cfg, flags or {})
    for assignment in sets:
        key, value = parse_assignment(assignment)
        if key in ("version", "preset"):  # what the run records of itself, not options
            raise ConfigError(f"--set {key}: recorded by sagan, not set" + (" (choose one with --preset)"
                                                                            if key == "preset" else ""))
        if scope == "data" and not key.startswith("data."):
            raise ConfigError(f"--set {key}: this command reads a dataset and takes data.* keys only")
        set_value(cfg, key, value)
        one_length(cfg, {key: value})  # a later --set of the run's length replaces an earlier one
    validate(cfg, scope)
    _settle(cfg)
    if resume is not None:
        check_resumable(_settle(from_dict(resume)), cfg)
    check_environment(cfg, scope)
    return cfg


def _settle(cfg: Config) -> Config:
    """Fill in the fields left to decide (None), so the config records what acts."""
    cfg.train.gp_weight = gp_weight(cfg.train.loss, cfg.train.gp_weight)
    return cfg


def resumable_keys() -> list[str]:
    """The dotted keys that `--resume` may change (the fields declared with `resumable`)."""
    return [key for key, f in _fields() if f.metadata.get("resumable")]


def _fields():
    """(dotted key, dataclass field) of every leaf field of Config."""
    hints = typing.get_type_hints(Config)
    for section in dataclasses.fields(Config):
        if dataclasses.is_dataclass(hints[section.name]):
            yield from ((f"{section.name}.{f.name}", f) for f in dataclasses.fields(hints[section.name]))


def check_resumable(recorded: Config, cfg: Config, source: str = "--resume") -> None:
    """Refuse `cfg` as the continuation of a run that recorded `recorded` if a field but the resumable ones differs."""
    allowed = resumable_keys()
    for key, _ in _fields():
        if get_value(cfg, key) != get_value(recorded, key) and key not in allowed:
            raise ConfigError(f"{source}: {key} may not change (the run has {get_value(recorded, key)!r}, given "
                              f"{get_value(cfg, key)!r}); only {', '.join(allowed)} may")


def data_flags(value: str) -> dict[str, str]:
    """The config keys of a `--data` value: a dataset name, or an image folder (short for imagefolder + its root)."""
    if value in data.DATASETS:
        return {"data.name": value}
    if Path(value).expanduser().is_dir():
        return {"data.name": "imagefolder", "data.root": value}
    raise ConfigError(f"--data: '{value}' is neither a dataset ({', '.join(data.DATASETS)}) nor an existing folder")
