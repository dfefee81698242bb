"""Named presets: partial configs over the defaults."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .fields import Config
from .values import update

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

def preset(name: str) -> Config:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    cfg = Config(preset=name)
    update(cfg, {k: v for k, v in PRESETS[name].items() if k != "description"}, source=f"preset {name}")
    return cfg
