"""The one validation of a config: every option against the others and the registries, before any file is read."""

from __future__ import annotations

import dataclasses
import itertools
import math
from pathlib import Path

import torch

from .. import augment, data, kernels, trackers
from ..data.imagefolder import LABELS
from ..errors import ConfigError, MissingPathError
from ..losses import LOSSES, gp_weight
from ..metrics.evaluate import BACKBONES as EVAL_BACKBONES
from ..metrics.evaluate import headlines, parse_metrics
from ..models import ATTENTION, BACKBONES, INITS, POSITIONS, build_discriminator, build_generator
from ..optim import SCHEDULES
from ..runtime import PRECISIONS, resolve_device
from .fields import Config, EvalConfig
from .values import get_value

# The valid values of each choice field: the registries' names.
CHOICES = {
    "model.arch": tuple(BACKBONES),
    "model.attention": tuple(ATTENTION),
    "model.attention_pos": POSITIONS,
    "model.init": tuple(INITS),
    "data.name": tuple(data.DATASETS),
    "data.labels": LABELS,
    "train.loss": tuple(LOSSES),
    "train.augment": tuple(augment.AUGMENTS),
    "train.lr_schedule": tuple(SCHEDULES),
    "train.amp": tuple(PRECISIONS),
    "train.kernels": kernels.MODES,
    "train.on_nonfinite": ("stop", "rollback"),
    "train.compile_mode": ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),  # torch's
    "eval.backbone": EVAL_BACKBONES,
}

# Fields that act only under a condition: (key, the condition, the condition in words). Setting one away from its
# default without the condition is a mistake the user would not see.
CONDITIONAL = [
    *[(f"model.{option}", lambda c, o=option: o in BACKBONES[c.model.arch].options,
       "model.arch=" + " or ".join(arch for arch, backbone in BACKBONES.items() if option in backbone.options))
      for option in ("expansion",)],
    *[(f"model.attention_{option}", lambda c, o=option: o in ATTENTION[c.model.attention].options,
       "model.attention=" + " or ".join(form for form, entry in ATTENTION.items() if option in entry.options))
      for option in ("heads", "window", "points")],
    ("train.lr_gamma", lambda c: c.train.lr_schedule in ("exponential", "step"),
     "train.lr_schedule=exponential or step"),
    ("train.lr_step_size", lambda c: c.train.lr_schedule == "step", "train.lr_schedule=step"),
    ("train.lecam_decay", lambda c: c.train.lecam_weight > 0, "train.lecam_weight > 0"),
    *[(f"train.{name}", lambda c: c.train.ema_decay > 0, "train.ema_decay > 0")
      for name in ("ema_rampup", "ema_start")],
    ("train.augment_policy", lambda c: c.train.augment == "diffaugment", "train.augment=diffaugment"),
    *[(f"train.ada_{name}", lambda c: c.train.augment == "ada", "train.augment=ada")
      for name in ("target", "images", "interval")],
    ("train.compile_mode", lambda c: c.train.compile, "train.compile=true"),
    ("train.rollbacks", lambda c: c.train.on_nonfinite == "rollback", "train.on_nonfinite=rollback"),
    ("data.split_seed", lambda c: c.data.test_fraction > 0, "data.test_fraction > 0"),
] + [(f"eval.{f.name}", lambda c: c.eval.every > 0 or c.eval.at_end, "eval.every > 0 or eval.at_end")
     for f in dataclasses.fields(EvalConfig) if f.name not in ("every", "at_end")] + [
    (f"eval.{name}", lambda c: not (c.eval.reference or "").endswith(".npz"),
     "real images as eval.reference, not a stats .npz") for name in ("split", "reference_samples")]


# What a config is for: a training run; a dataset to read (the data section only, e.g. `sagan data info`); or
# training steps on synthetic batches (no dataset files, e.g. `sagan bench`).
SCOPES = ("run", "data", "synthetic")


def validate(cfg: Config, scope: str = "run") -> None:
    """Check every option of `scope` (SCOPES) against the others and the registries, without reading any file;
    raises a one-line ConfigError naming the option."""
    if scope not in SCOPES:
        raise ValueError(f"scope must be one of {SCOPES}, got {scope!r}")
    in_scope = (lambda key: key.startswith("data.")) if scope == "data" else (lambda key: True)
    for key, allowed in CHOICES.items():
        value = get_value(cfg, key)
        if in_scope(key) and value not in allowed:
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(allowed)}")
    _check_numbers(cfg, in_scope)
    m, d, t, e = cfg.model, cfg.data, cfg.train, cfg.eval
    if d.resolution < 32 or d.resolution > 256 or d.resolution & (d.resolution - 1):
        raise ConfigError(f"data.resolution: {d.resolution} is not a power of two from 32 to 256")
    if d.channels not in (1, 3):
        raise ConfigError(f"data.channels: {d.channels} must be 1 (grayscale) or 3 (RGB)")
    if not d.cache.strip():
        raise ConfigError("data.cache: expected auto, off, a folder or a .npy file, got an empty string")
    data.check_options(d.name, d.split, {key: getattr(d, key) for key in data.OPTIONS}, test_fraction=d.test_fraction)
    if data.DATASETS[d.name].needs_root and not d.root and scope != "synthetic":
        raise ConfigError(f"data.root: the {d.name} dataset needs a data root folder")
    if d.root and not data.DATASETS[d.name].needs_root:  # e.g. --data-root without --data: the root would go unread
        raise ConfigError(f"data.root: the {d.name} dataset ships with sagan and reads no folder; name the dataset "
                          f"of {d.root} with data.name (--data NAME, or --data {d.root} for a folder of images)")
    if scope == "data":
        return
    if not m.num_classes and (d.labels != "none" or d.attribute):
        # Labels asked for and then ignored by an unconditional model is surely a mistake.
        given = f"data.labels={d.labels}" if d.labels != "none" else f"data.attribute={d.attribute}"
        raise ConfigError(f"{given} labels the images, but model.num_classes is 0; set model.num_classes to use them")
    backbone = BACKBONES[m.arch]
    for option, net in itertools.product(("attention", "deformable"), ("generator", "discriminator")):
        key = f"model.{net[0]}_{option}"
        available = getattr(backbone, f"{option}_resolutions")(net, d.resolution)
        bad = sorted(set(get_value(cfg, key)) - set(available))
        if bad:
            raise ConfigError(f"{key}: {bad} not a feature resolution of the {m.arch} {net} at "
                              f"{d.resolution}x{d.resolution}; choose from "
                              f"{sorted(available) or 'none: it has no layer of that kind'}")
    _check_attention(m)
    for key, build in (("train.freeze_g", build_generator), ("train.freeze_d", build_discriminator)):
        if get_value(cfg, key):  # the blocks are known once the network is built: build it, off the random stream
            with torch.random.fork_rng(devices=[]):
                blocks = list(build(m, d.resolution, d.channels).blocks)
            if get_value(cfg, key) > len(blocks):
                raise ConfigError(f"{key}: {get_value(cfg, key)} is more than the network's {len(blocks)} blocks "
                                  f"({', '.join(blocks)})")
    defaults = Config()
    for key, applies, condition in CONDITIONAL:
        if not applies(cfg) and get_value(cfg, key) != get_value(defaults, key):
            raise ConfigError(f"{key}: '{get_value(cfg, key)}' applies only with {condition}")
    if (t.steps > 0) == (t.epochs > 0):
        raise ConfigError(f"train.steps and train.epochs: set exactly one above 0 (the run's length), got steps="
                          f"{t.steps}, epochs={t.epochs}")
    if t.loss == "wgan-gp" and gp_weight(t.loss, t.gp_weight) == 0:
        raise ConfigError("train.gp_weight: 0 leaves the wgan-gp critic unconstrained; it needs a penalty above 0")
    if unknown := [name for name in t.loggers if name not in trackers.TRACKERS]:
        raise ConfigError(f"train.loggers: {', '.join(unknown)} not among {', '.join(trackers.TRACKERS)}")
    policies = t.augment_policy.split(",")
    if not set(policies) <= set(augment.POLICIES) or len(set(policies)) != len(policies):
        raise ConfigError(f"train.augment_policy: '{t.augment_policy}' is not a comma-separated list of distinct "
                          f"policies from {', '.join(augment.POLICIES)}")
    if t.batch_size % t.accumulate:
        raise ConfigError(f"train.accumulate: {t.accumulate} micro-batches do not divide train.batch_size "
                          f"{t.batch_size}")
    if t.accumulate > 1 and t.compile and t.compile_mode == "reduce-overhead":
        # CUDA graphs would overwrite one micro-batch's outputs with the next one's before the backward pass.
        raise ConfigError("train.accumulate: does not combine with train.compile_mode=reduce-overhead")
    if t.accumulate > 1 and t.reuse_fakes:
        raise ConfigError("train.accumulate: does not combine with train.reuse_fakes (the G step would need every "
                          "micro-batch's graph)")
    if t.reuse_fakes and t.n_dis != 1:
        raise ConfigError(f"train.reuse_fakes: needs train.n_dis=1 (one D step's fakes per G step), got {t.n_dis}")
    if t.reuse_fakes and t.compile_mode == "reduce-overhead":
        # CUDA graphs free a step's outputs when the next update starts, and the fakes outlive the D step.
        raise ConfigError("train.reuse_fakes: does not combine with train.compile_mode=reduce-overhead")
    if t.device not in ("auto", "cpu", "cuda") and not (t.device.startswith("cuda:") and t.device[5:].isdigit()):
        raise ConfigError(f"train.device: '{t.device}' is not one of auto, cpu, cuda, cuda:N")
    if t.amp == "fp16" and t.device == "cpu":
        raise ConfigError("train.amp: fp16 needs a CUDA device; use bf16 on the CPU")
    if e.every and e.at_end:
        raise ConfigError("eval.at_end: eval.every already evaluates the final generator; set one of them")
    if e.split != "auto":
        data.check_options(d.name, e.split, {}, prefix="eval.", test_fraction=d.test_fraction)
    parse_metrics(e.metrics, e.backbone, option="eval.metrics")
    if e.best_metric and e.best_metric not in headlines(e.metrics, e.backbone):
        raise ConfigError(f"eval.best_metric: '{e.best_metric}' is not a result of eval.metrics "
                          f"(choose from {', '.join(headlines(e.metrics, e.backbone))})")


# (keys, the test each value must pass, the test in words)
RANGES = [
    (["model.z_dim", "model.g_channels", "model.d_channels", "model.expansion", "model.attention_heads",
      "train.lr_step_size", "train.batch_size", "train.n_dis", "train.accumulate", "train.ada_images",
      "train.ada_interval", "train.log_every", "train.sample_every",
      "train.checkpoint_every", "train.rollbacks", "train.num_samples", "train.lr_g", "train.lr_d", "eval.num_samples",
      "eval.batch_size"],
     lambda v: v > 0, "must be positive"),
    (["model.num_classes", "data.crop", "data.workers", "train.steps", "train.epochs", "train.max_minutes",
      "train.keep_checkpoints", "train.ema_start", "train.ema_rampup", "train.freeze_g", "train.freeze_d",
      "train.gp_weight", "train.r1_weight", "train.lecam_weight", "train.clip_grad_norm", "train.clip_grad_value",
      "train.weight_decay", "eval.every", "eval.reference_samples"],
     lambda v: v >= 0, "must not be negative"),
    (["train.beta1", "train.beta2", "train.ema_decay", "train.lecam_decay"], lambda v: 0 <= v < 1,
     "must be in [0, 1)"),
    (["train.ada_target"], lambda v: -1 < v < 1, "must be in (-1, 1)"),
    (["train.lr_gamma"], lambda v: 0 < v <= 1, "must be in (0, 1]"),
    (["train.seed", "data.split_seed"], lambda v: 0 <= v < 2**32, "must be in [0, 2^32)"),  # numpy's seeds
]


def _check_attention(m) -> None:
    """The attention options the blocks would refuse, in the config's words."""
    if m.attention_window < 1 or m.attention_window % 2 == 0:
        raise ConfigError(f"model.attention_window: {m.attention_window} must be an odd number of positions")
    if m.attention_points < 1 or math.isqrt(m.attention_points) ** 2 != m.attention_points:
        raise ConfigError(f"model.attention_points: {m.attention_points} must be a square number (4, 9, 16, ...)")
    if "heads" in ATTENTION[m.attention].options:
        # Every backbone's widths are multiples of its width field, so heads dividing width / 8 divide them all.
        for key, width, where in (("model.g_channels", m.g_channels, m.g_attention),
                                  ("model.d_channels", m.d_channels, m.d_attention)):
            if where and (width // 8) % m.attention_heads:
                raise ConfigError(f"model.attention_heads: {m.attention_heads} heads do not divide the {width // 8} "
                                  f"query channels of {key}={width} (a block's channels / 8)")


def _check_numbers(cfg: Config, in_scope) -> None:
    for keys, test, words in RANGES:
        for key in filter(in_scope, keys):
            value = get_value(cfg, key)
            if value is not None and not (math.isfinite(value) and test(value)):  # None: auto, decided later
                raise ConfigError(f"{key}: {words}, got {get_value(cfg, key)}")


def check_environment(cfg: Config, scope: str = "run") -> None:
    """What `validate` cannot know from the config alone: that the device and (but for synthetic data) the data
    folder exist here."""
    resolve_device(cfg.train.device, "train.device")
    if cfg.data.root and data.DATASETS[cfg.data.name].needs_root and scope != "synthetic":
        root = Path(cfg.data.root).expanduser()
        if not root.exists():
            raise MissingPathError(f"data root {root} does not exist")
    trackers.check(cfg.train.loggers)
    if cfg.train.init_from and not Path(cfg.train.init_from).expanduser().exists():
        raise MissingPathError(f"train.init_from: {cfg.train.init_from} does not exist (a run directory or a "
                               f"checkpoint file)")
