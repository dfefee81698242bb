"""Typed run configuration: dataclasses, named presets, YAML files and `--set key=value` overrides.

Resolution order: dataclass defaults -> preset -> YAML file -> command-line flags and `--set` overrides.
The resolved config is written to `RUN/config.yaml` and stored in every checkpoint.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError, MissingPathError


@dataclass
class ModelConfig:
    arch: str = "resnet"  # backbone: resnet (the paper's 128x128 nets) | dcgan (the popular 64x64 PyTorch SAGAN)
    z_dim: int = 128  # latent size
    g_channels: int = 64  # generator width: channels of its highest-resolution feature map
    d_channels: int = 64  # discriminator width: channels of its highest-resolution feature map
    g_attention: list[int] = field(default_factory=lambda: [32])  # G feature resolutions followed by self-attention
    d_attention: list[int] = field(default_factory=lambda: [32])  # D feature resolutions followed by self-attention
    attention: str = "paper"  # paper (1x1 f, g, h convs) | official (the released TF block, pooled keys)
    g_spectral_norm: bool = True  # spectral norm on generator layers
    d_spectral_norm: bool = True  # spectral norm on discriminator layers
    num_classes: int = 0  # > 0: conditional BN in G and a projection discriminator
    init: str = "orthogonal"  # weight init: orthogonal | xavier


@dataclass
class DataConfig:
    name: str = "embedded"  # embedded | imagefolder | celeba | mnist | fashion-mnist | cifar10 | lsun
    root: str | None = None  # dataset folder (not needed for embedded); lsun: the category's *_lmdb folder itself
    split: str = "train"  # celeba: train | valid | test | all; mnist, fashion-mnist, cifar10: train | test | all
    resolution: int = 32  # image size, a power of two from 32 to 256
    channels: int = 3  # 3 = RGB, 1 = grayscale
    # center-crop size before resizing; 0 = the largest centered square, except CelebA: 178 (the full width of its
    # 178x218 aligned faces); 160 (the popular PyTorch SAGAN), 140 or 108 (DCGAN-TF) zoom in on the face
    crop: int = 0
    labels: str = "none"  # imagefolder: none | folders (each first-level folder is a class, sorted by name)
    attribute: str = ""  # celeba: label images by one list_attr_celeba.txt column, e.g. Smiling (2 classes)
    pad: bool = True  # mnist, fashion-mnist, embedded at 32x32: zero-pad the 28x28 digits (LeNet); false: resize
    workers: int = 2  # decoding processes for datasets read from image files
    # image-file datasets (celeba, imagefolder, lsun): decode once into a memory-mapped file and train from it;
    # auto = a file in $SAGAN_CACHE/datasets (default ~/.cache/sagan/datasets) | off | a folder | a .npy file
    cache: str = "auto"
    strict: bool = False  # stop at an unreadable image instead of skipping it with a warning


# DataConfig fields that say how to read a dataset, not which images and labels it holds: the dataset cache is
# keyed by all the other fields, so a new field is part of the key unless it is listed here.
DATA_READ_FIELDS = ("root", "workers", "cache", "strict")


@dataclass
class TrainConfig:
    steps: int = 200_000  # total generator steps of the run
    batch_size: int = 64
    loss: str = "hinge"  # hinge (the paper) | bce (non-saturating) | wgan-gp
    gp_weight: float = 10.0  # gradient-penalty weight (loss wgan-gp)
    r1_weight: float = 0.0  # R1 penalty weight on real images, any loss (0 = off)
    clip_grad_norm: float = 0.0  # max gradient norm for G and D (0 = off)
    lr_g: float = 1e-4  # TTUR: G learns 4x slower than D
    lr_d: float = 4e-4
    beta1: float = 0.0
    beta2: float = 0.9
    weight_decay: float = 0.0  # Adam L2 weight decay for G and D
    lr_schedule: str = "constant"  # constant | linear (decay to 0 at the last step) | exponential (per epoch)
    lr_gamma: float = 0.99  # per-epoch factor of the exponential schedule
    n_dis: int = 1  # D steps per G step
    reuse_fakes: bool = False  # the G step scores the D step's fakes (as PyTorch's DCGAN example), not new latents
    ema_decay: float = 0.999  # decay of the generator EMA used for sampling
    ema_start: int = 0  # G steps before the EMA starts averaging (until then it copies G)
    amp: str = "none"  # mixed precision: none | bf16 | fp16 (CUDA only)
    channels_last: bool | None = None  # NHWC memory format for convolutions (auto: on the CPU, where it is faster)
    fused_optimizer: bool = True  # Adam as one fused kernel over all parameters (false: the per-tensor loop)
    compile: bool = False  # torch.compile G and D (the first steps compile for a minute or more)
    compile_mode: str = "default"  # torch.compile mode; reduce-overhead adds CUDA graphs (fewer kernel launches)
    sync_bn: bool = False  # under torchrun on GPUs: G's batch norm uses statistics of the global batch
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    seed: int = 0
    log_every: int = 100  # steps between lines of metrics.jsonl
    sample_every: int = 1000  # steps between sample grids
    checkpoint_every: int = 5000  # steps between checkpoints
    keep_checkpoints: int = 3  # step-XXXXXXX.pt files kept besides latest.pt
    num_samples: int = 64  # images in each sample grid
    report: bool = True  # `sagan train` refreshes RUN/report.html at every checkpoint


@dataclass
class EvalConfig:
    every: int = 0  # G steps between evaluations of the EMA generator (0 = off)
    num_samples: int = 10_000  # generated images per evaluation
    metrics: list[str] = field(default_factory=lambda: ["fid"])  # fid, kid, is, pr, pr_inception, dc, swd
    reference: str | None = None  # dataset name, image folder or stats .npz (none: the training data)
    reference_samples: int = 0  # real images for the reference statistics, a seeded random subset (0 = all)
    backbone: str = "inception"  # network for fid / kid: inception | efficientnet-lite0 | swd
    inception_weights: str | None = None  # FID Inception weight file (none: $SAGAN_INCEPTION_WEIGHTS or download)
    vgg16_weights: str | None = None  # VGG16 weight file for pr / dc (none: $SAGAN_VGG16_WEIGHTS or download)
    best_metric: str = ""  # result that picks checkpoints/best.pt, e.g. fid or is ("" = the first metric's)
    batch_size: int = 64


@dataclass
class Config:
    preset: str = ""  # the preset this config started from
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "description": "embedded Fashion-MNIST subset at 32x32, small DCGAN-style SAGAN, a few minutes on a laptop CPU",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 32, "d_channels": 32, "g_attention": [16],
                  "d_attention": [8]},
        "data": {"name": "embedded", "resolution": 32},
        "train": {"steps": 1500, "batch_size": 64, "lr_g": 2e-4, "lr_d": 4e-4, "ema_decay": 0.99, "log_every": 50,
                  "sample_every": 250, "checkpoint_every": 500},
    },
    "dcgan64": {
        "description": "the popular PyTorch SAGAN's 64x64 architecture (same layer shapes) on CelebA",
        "model": {"arch": "dcgan", "z_dim": 128, "g_channels": 64, "d_channels": 64, "g_attention": [16, 32],
                  "d_attention": [8, 4]},
        "data": {"name": "celeba", "resolution": 64, "crop": 160},  # its CenterCrop(160), then resize
        "train": {"steps": 1_000_000, "batch_size": 64},
    },
    "celeba64": {
        "description": "ResNet SAGAN, paper recipe, CelebA 64x64",
        "model": {"arch": "resnet", "g_attention": [32], "d_attention": [32]},
        "data": {"name": "celeba", "resolution": 64},
        "train": {"steps": 100_000, "batch_size": 64},
    },
    "celeba128": {
        "description": "the paper's 128x128 ResNet SAGAN and recipe on CelebA",
        "model": {"arch": "resnet", "g_attention": [32], "d_attention": [32]},
        "data": {"name": "celeba", "resolution": 128},
        "train": {"steps": 200_000, "batch_size": 64},
    },
    "mnist": {
        "description": "class-conditional DCGAN-style SAGAN on MNIST at 32x32",
        "model": {"arch": "dcgan", "g_channels": 32, "d_channels": 32, "g_attention": [16], "d_attention": [8],
                  "num_classes": 10},
        "data": {"name": "mnist", "resolution": 32, "channels": 1},
        "train": {"steps": 10_000, "batch_size": 64, "lr_g": 2e-4, "log_every": 50, "sample_every": 500,
                  "checkpoint_every": 2000},
    },
}

BOOL_WORDS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}
CHOICES = {
    "model.arch": ("resnet", "dcgan"),
    "model.attention": ("paper", "official"),
    "model.init": ("orthogonal", "xavier"),
    "data.split": ("train", "valid", "test", "all"),
    "data.labels": ("none", "folders"),
    "train.loss": ("hinge", "bce", "wgan-gp"),
    "train.lr_schedule": ("constant", "linear", "exponential"),
    "train.amp": ("none", "bf16", "fp16"),
    "train.compile_mode": ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs"),
    "eval.backbone": ("inception", "efficientnet-lite0", "swd"),
}


def preset(name: str) -> Config:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    cfg = Config(preset=name)
    update(cfg, {k: v for k, v in PRESETS[name].items() if k != "description"}, source=f"preset {name}")
    return cfg


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Read a YAML config file (a nested mapping like RUN/config.yaml)."""
    path = Path(path)
    if not path.is_file():
        raise MissingPathError(f"config file {path} does not exist")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping of sections (model, data, train)")
    return data


def update(cfg: Config, values: dict[str, Any], source: str) -> None:
    """Set every key of the nested mapping `values` on `cfg`; `source` names where they came from in errors."""
    for key, value in _flatten(values):
        set_value(cfg, key, value, source)


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


def dataset_options(data: DataConfig) -> dict[str, Any]:
    """What a dataset's images and labels depend on besides its files: the data fields but DATA_READ_FIELDS, and
    the absolute root."""
    options = {key: value for key, value in dataclasses.asdict(data).items() if key not in DATA_READ_FIELDS}
    return options | {"root": str(Path(data.root).expanduser().resolve()) if data.root else None}


def from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a config recorded by `to_dict` (a checkpoint or config.yaml)."""
    cfg = Config()
    update(cfg, values, source="recorded config")
    return cfg


def to_yaml(cfg: Config) -> str:
    return yaml.safe_dump(to_dict(cfg), sort_keys=False)


def validate(cfg: Config) -> None:
    """Check option values that do not depend on files; raises ConfigError naming the option."""
    for key, allowed in CHOICES.items():
        value = get_value(cfg, key)
        if value not in allowed:
            raise ConfigError(f"{key}: '{value}' is not one of {', '.join(allowed)}")
    res = cfg.data.resolution
    if res < 32 or res > 256 or res & (res - 1):
        raise ConfigError(f"data.resolution: {res} is not a power of two from 32 to 256")
    if not cfg.data.cache.strip():
        raise ConfigError("data.cache: expected auto, off, a folder or a .npy file, got an empty string")
    if cfg.data.channels not in (1, 3):
        raise ConfigError(f"data.channels: {cfg.data.channels} must be 1 (grayscale) or 3 (RGB)")
    if cfg.train.compile_mode != "default" and not cfg.train.compile:
        raise ConfigError(f"train.compile_mode: '{cfg.train.compile_mode}' applies only with train.compile=true")
    if cfg.train.reuse_fakes and cfg.train.n_dis != 1:
        raise ConfigError(f"train.reuse_fakes: needs train.n_dis=1 (one D step's fakes per G step), "
                          f"got {cfg.train.n_dis}")
    if cfg.train.reuse_fakes and cfg.train.compile_mode == "reduce-overhead":
        # CUDA graphs free a step's outputs when the next update starts, and the fakes outlive the D step.
        raise ConfigError("train.reuse_fakes: does not combine with train.compile_mode=reduce-overhead")
    positive = ["model.z_dim", "model.g_channels", "model.d_channels", "train.steps", "train.batch_size",
                "train.n_dis", "train.log_every", "train.sample_every", "train.checkpoint_every", "train.num_samples",
                "eval.num_samples", "eval.batch_size"]
    for key in positive:
        if get_value(cfg, key) <= 0:
            raise ConfigError(f"{key}: must be positive, got {get_value(cfg, key)}")
    for key in ["model.num_classes", "data.crop", "data.workers", "train.keep_checkpoints", "train.ema_start",
                "train.gp_weight", "train.r1_weight", "train.clip_grad_norm", "train.weight_decay", "eval.every",
                "eval.reference_samples"]:
        if get_value(cfg, key) < 0:
            raise ConfigError(f"{key}: must not be negative, got {get_value(cfg, key)}")
    for key in ["train.lr_g", "train.lr_d"]:
        if get_value(cfg, key) <= 0:
            raise ConfigError(f"{key}: must be positive, got {get_value(cfg, key)}")
    for key in ["train.beta1", "train.beta2", "train.ema_decay"]:
        if not 0 <= get_value(cfg, key) < 1:
            raise ConfigError(f"{key}: must be in [0, 1), got {get_value(cfg, key)}")
    if not 0 < cfg.train.lr_gamma <= 1:
        raise ConfigError(f"train.lr_gamma: must be in (0, 1], got {cfg.train.lr_gamma}")
    device = cfg.train.device
    if device not in ("auto", "cpu", "cuda") and not (device.startswith("cuda:") and device[5:].isdigit()):
        raise ConfigError(f"train.device: '{device}' is not one of auto, cpu, cuda, cuda:N")


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
                str | None: "a string or none", bool | None: "true, false or auto"}[field_type]
    fail = ConfigError(f"{source}: {key} expects {expected}, got '{value}'")
    text = value.strip() if isinstance(value, str) else None
    if field_type == bool | None:  # None: decided by the device; otherwise parsed as a bool, failing with `fail`
        if value is None or (text is not None and text.lower() in ("auto", "none", "null")):
            return None
        field_type = bool
    if isinstance(field_type, types.UnionType):  # str | None
        return None if value is None or (text is not None and text.lower() in ("none", "null", "")) else str(value)
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
