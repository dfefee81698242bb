"""A comparison spec: the variants, the seeds, one training budget and one evaluation protocol, read from YAML
(a file, or a name of the specs packaged in `sagan/experiments/specs/`) and resolved to one validated config per
run before anything trains.

    description: what the comparison asks
    base: {preset: paper, data.name: fashion-mnist, ...}    # a preset and config overrides, nested or dotted
    variants:                                               # or grid: {model.g_attention: [[8], [16]]}
      no-attention: {model.g_attention: [], model.d_attention: []}
      dcgan: {preset: dcgan}                                # a variant may start from its own preset
    seeds: [0, 1]
    budget: {minutes: 5}                                    # steps, epochs and / or minutes
    eval: {metrics: [fid, kid], num_samples: 2000}          # eval.* fields; evaluated at the end of each run
    overrides: {data.root: /data/fashion-mnist}             # config keys set on every run, after all the above
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .. import config as config_mod
from ..config import Config
from ..errors import ConfigError

SPEC_KEYS = ("description", "base", "variants", "grid", "seeds", "budget", "eval", "overrides")
BUDGET_KEYS = {"steps": "train.steps", "epochs": "train.epochs", "minutes": "train.max_minutes"}
NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]*")


def packaged() -> dict[str, str]:
    """The specs that come with sagan: name -> description."""
    folder = resources.files(__package__).joinpath("specs")
    return {f.name.removesuffix(".yaml"): yaml.safe_load(f.read_text()).get("description", "")
            for f in sorted(folder.iterdir(), key=lambda f: f.name) if f.name.endswith(".yaml")}


@dataclass
class Run:
    variant: str
    seed: int
    config: Config

    @property
    def name(self) -> str:
        return f"{self.variant}-seed{self.seed}"


@dataclass
class Spec:
    name: str  # the file's stem or the packaged name
    description: str
    variants: list[str]
    seeds: list[int]
    runs: list[Run]  # variants x seeds, variant by variant
    source: dict[str, Any]  # the spec as read, with the caller's seeds, budget and overrides: a spec itself


def read(spec: str | Path | dict) -> tuple[str, dict[str, Any]]:
    """(name, mapping) of a spec file, a packaged spec name or a mapping."""
    if isinstance(spec, dict):
        return "compare", spec
    path = Path(spec).expanduser()
    if not path.suffix and not path.exists():
        if str(spec) not in packaged():
            raise ConfigError(f"spec '{spec}' is neither a YAML file nor a packaged spec ({', '.join(packaged())})")
        text = resources.files(__package__).joinpath("specs", f"{spec}.yaml").read_text()
        return str(spec), yaml.safe_load(text)
    return path.stem, config_mod.load_yaml(path, "spec file", f"a mapping of {', '.join(SPEC_KEYS)}")


def load(spec: str | Path | dict, *, overrides: dict[str, Any] | None = None, seeds: list[int] | None = None,
         budget: dict[str, float] | None = None) -> Spec:
    """The resolved spec; `overrides` (dotted config keys) apply to every run after all of the spec's settings,
    `seeds` and `budget` replace its own. Every run's config is validated; an error is one line naming the spec
    and the variant."""
    name, values = read(spec)
    where = f"spec {name}"
    unknown = sorted(set(values) - set(SPEC_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; a spec has {', '.join(SPEC_KEYS)}")
    values = dict(values)
    values["base"] = _mapping(values.get("base", {}), f"{where}: base")
    values["overrides"] = _mapping(values.get("overrides", {}), f"{where}: overrides") | (overrides or {})
    values["seeds"] = seeds if seeds is not None else values.get("seeds", [0])
    values["budget"] = budget if budget else values.get("budget")
    if not isinstance(values["seeds"], list) or not values["seeds"] or not all(
            isinstance(s, int) and not isinstance(s, bool) for s in values["seeds"]):
        raise ConfigError(f"{where}: seeds must be a list of integers, got {values['seeds']!r}")
    budget_flags = _budget(values["budget"], where)
    eval_flags = {f"eval.{key}": value for key, value in _mapping(values.get("eval", {}), f"{where}: eval").items()}
    if not eval_flags.get("eval.every"):
        eval_flags["eval.at_end"] = True
    variants = _variants(values, where)
    runs = []
    for variant, changes in variants.items():
        layers = _flatten(values["base"]) | _flatten(changes)
        preset = layers.pop("preset", None)
        for seed in values["seeds"]:
            flags = layers | budget_flags | eval_flags | _flatten(values["overrides"]) | {"train.seed": seed}
            try:
                cfg = config_mod.resolve(preset, flags=flags)
            except ConfigError as e:
                raise ConfigError(f"{where}: variant {variant}: {e}") from None
            runs.append(Run(variant, seed, cfg))
    return Spec(name, str(values.get("description", "")), list(variants), values["seeds"], runs, values)


def _mapping(value: Any, where: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{where} must be a mapping of config keys, got {value!r}")
    return value


def _flatten(values: dict[str, Any]) -> dict[str, Any]:
    """Nested sections and dotted keys alike as {dotted key: value}; the last mention of a key wins."""
    out = {}
    for key, value in values.items():
        if isinstance(value, dict):
            out |= {f"{key}.{k}": v for k, v in _flatten(value).items()}
        else:
            out[key] = value
    return out


def _budget(budget: Any, where: str) -> dict[str, Any]:
    """The config flags of a budget: steps or epochs (the run's length), minutes (its time limit), or both."""
    if not isinstance(budget, dict) or not budget or set(budget) - set(BUDGET_KEYS):
        raise ConfigError(f"{where}: budget must be a mapping of {', '.join(BUDGET_KEYS)} (e.g. {{minutes: 5}}), "
                          f"got {budget!r}")
    if "steps" in budget and "epochs" in budget:
        raise ConfigError(f"{where}: budget: give steps or epochs, not both")
    return {BUDGET_KEYS[key]: value for key, value in budget.items()}


def _variants(values: dict[str, Any], where: str) -> dict[str, dict[str, Any]]:
    """{name: overrides} from `variants` (named sets of overrides) or `grid` (every combination of values)."""
    if ("variants" in values) == ("grid" in values):
        raise ConfigError(f"{where}: give variants (named overrides) or grid (key: [values]), one of them")
    if "variants" in values:
        variants = _mapping(values["variants"], f"{where}: variants")
        variants = {str(k): _mapping(v, f"{where}: variant {k}") for k, v in variants.items()}
    else:
        grid = _mapping(values["grid"], f"{where}: grid")
        if not all(isinstance(v, list) and v for v in grid.values()):
            raise ConfigError(f"{where}: grid: every key needs a non-empty list of values")
        variants = {"_".join(f"{key.split('.')[-1]}-{_short(v)}" for key, v in zip(grid, combination)):
                    dict(zip(grid, combination)) for combination in itertools.product(*grid.values())}
    if not variants:
        raise ConfigError(f"{where}: variants: name at least one")
    for name in variants:
        if not NAME.fullmatch(name):
            raise ConfigError(f"{where}: variant name '{name}' must be letters, digits and . _ + - (a folder name)")
    return variants


def _short(value: Any) -> str:
    """A grid value in a variant name: [16, 32] -> 16+32, [] -> none."""
    if isinstance(value, list):
        return "+".join(map(str, value)) or "none"
    return str(value)
