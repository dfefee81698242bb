"""Named presets: partial configs over the defaults."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .fields import Config
from .values import update

# Each preset's description says where its recipe comes from, and which attention form it uses and why.
PRESETS: dict[str, dict[str, Any]] = {
    "demo": {
        "description": "embedded Fashion-MNIST subset at 32x32, small DCGAN-style SAGAN, a few minutes on a laptop "
                       "CPU; popular attention form (the small block of the PyTorch SAGAN it is scaled from)",
        "model": {"arch": "dcgan", "z_dim": 64, "g_channels": 32, "d_channels": 32, "g_attention": [16],
                  "d_attention": [8], "attention": "popular"},
        "data": {"name": "embedded", "resolution": 32},
        "train": {"steps": 1500, "batch_size": 64, "lr_g": 2e-4, "lr_d": 4e-4, "ema_decay": 0.99, "log_every": 50,
                  "sample_every": 250, "checkpoint_every": 500},
    },
    "paper": {
        "description": "the paper's recipe on any dataset, 64x64 unless --resolution says otherwise: ResNet SAGAN, "
                       "hinge loss, TTUR (lr 1e-4 / 4e-4, betas 0 / 0.9), spectral norm in G and D, attention on the "
                       "32x32 features in its paper form (the equations of its section 3); what `sagan train --data "
                       "X` starts from",
        "model": {"arch": "resnet", "attention": "paper", "g_attention": [32], "d_attention": [32]},
        "data": {"resolution": 64},
    },
    "seed": {
        "description": "the design document's recipe: CelebA 128x128 split 80/20, BCE + gradient penalty 10, clipping "
                       "by value at 5, Adam with weight decay, exponential LR per epoch, per-epoch losses and "
                       "real-vs-generated sheets, IS + FID on the test part at the end; ResNet SAGAN with paper-form "
                       "attention in G and D (the document asks for the paper's SAGAN)",
        "model": {"arch": "resnet", "attention": "paper", "g_attention": [32], "d_attention": [32]},
        "data": {"name": "celeba", "resolution": 128, "test_fraction": 0.2, "split_seed": 0},
        # From the document: the loss, penalty, clipping, schedule kind, split. Chosen here (it gives no values):
        # the paper's TTUR rates and betas, weight decay 1e-5, 20 epochs (~50k G steps on CelebA), gamma 0.95.
        "train": {"epochs": 20, "batch_size": 64, "loss": "bce", "gp_weight": 10.0, "clip_grad_value": 5.0,
                  "lr_g": 1e-4, "lr_d": 4e-4, "beta1": 0.0, "beta2": 0.9, "weight_decay": 1e-5,
                  "lr_schedule": "exponential", "lr_gamma": 0.95, "epoch_sheets": True},
        "eval": {"at_end": True, "metrics": ["fid", "is"]},
    },
    "dcgan64": {
        "description": "the popular PyTorch SAGAN's 64x64 architecture on CelebA, its popular attention form, so the "
                       "layer shapes and parameter count match that repository's",
        "model": {"arch": "dcgan", "z_dim": 128, "g_channels": 64, "d_channels": 64, "g_attention": [16, 32],
                  "d_attention": [8, 4], "attention": "popular"},
        "data": {"name": "celeba", "resolution": 64, "crop": 160},  # its CenterCrop(160), then resize
        "train": {"steps": 1_000_000, "batch_size": 64},
    },
    "celeba64": {
        "description": "ResNet SAGAN, the paper's recipe and attention form, CelebA 64x64",
        "model": {"arch": "resnet", "g_attention": [32], "d_attention": [32]},
        "data": {"name": "celeba", "resolution": 64},
        "train": {"steps": 100_000, "batch_size": 64},
    },
    "celeba128": {
        "description": "the paper's 128x128 ResNet SAGAN, recipe and attention form (its equations) on CelebA",
        "model": {"arch": "resnet", "g_attention": [32], "d_attention": [32]},
        "data": {"name": "celeba", "resolution": 128},
        "train": {"steps": 200_000, "batch_size": 64},
    },
    "mnist": {
        "description": "class-conditional DCGAN-style SAGAN on MNIST at 32x32; popular attention form, like demo",
        "model": {"arch": "dcgan", "g_channels": 32, "d_channels": 32, "g_attention": [16], "d_attention": [8],
                  "num_classes": 10, "attention": "popular"},
        "data": {"name": "mnist", "resolution": 32, "channels": 1},
        "train": {"steps": 10_000, "batch_size": 64, "lr_g": 2e-4, "log_every": 50, "sample_every": 500,
                  "checkpoint_every": 2000},
    },
    "imagenet128": {
        "description": "the paper's main experiment: class-conditional ImageNet (ILSVRC-2012, 1000 classes) at "
                       "128x128, ResNet SAGAN with the official attention block after the 32x32 features of G and "
                       "D, batch 256, hinge loss, TTUR (lr 1e-4 / 4e-4, betas 0 / 0.9), spectral norm in G and D, "
                       "1M steps; IS and FID of 50,000 samples against the val split every 20,000 steps",
        "model": {"arch": "resnet", "attention": "official", "g_attention": [32], "d_attention": [32],
                  "num_classes": 1000},
        "data": {"name": "imagenet", "resolution": 128},
        "train": {"steps": 1_000_000, "batch_size": 256, "checkpoint_every": 5000, "sample_every": 5000},
        "eval": {"every": 20_000, "metrics": ["is", "fid"], "num_samples": 50_000, "split": "val"},
    },
    # The baselines: each paper's networks and recipe on any --data, at its reference resolution unless
    # --resolution says otherwise (the README's preset table says where they differ from the papers).
    "dcgan": {
        "description": "DCGAN (Radford et al. 2015): its networks at figure 1's widths (BN in G and in D but its "
                       "first layer, LeakyReLU 0.2, 5x5 kernels, N(0, 0.02) weights), BCE, Adam 2e-4 betas 0.5 / "
                       "0.999, batch 128; no spectral norm, attention or EMA; 64x64",
        "model": {"arch": "dcgan-radford", "z_dim": 100, "g_channels": 128, "d_channels": 128, "g_attention": [],
                  "d_attention": [], "g_spectral_norm": False, "d_spectral_norm": False, "init": "normal"},
        "data": {"resolution": 64},
        "train": {"steps": 100_000, "batch_size": 128, "loss": "bce", "lr_g": 2e-4, "lr_d": 2e-4, "beta1": 0.5,
                  "beta2": 0.999, "ema_decay": 0.0},
    },
    "wgan-gp": {
        "description": "WGAN-GP (Gulrajani et al. 2017): its CIFAR-10 ResNet (128 wide, no normalisation in D), "
                       "Wasserstein loss + gradient penalty 10, 5 D steps per G step, Adam 1e-4 betas 0 / 0.9 (its "
                       "algorithm 1); no spectral norm, attention or EMA; 32x32",
        "model": {"arch": "resnet-wgan-gp", "g_channels": 128, "d_channels": 128, "g_attention": [],
                  "d_attention": [], "g_spectral_norm": False, "d_spectral_norm": False, "init": "xavier"},
        "data": {"resolution": 32},
        "train": {"steps": 100_000, "batch_size": 64, "loss": "wgan-gp", "n_dis": 5, "lr_g": 1e-4, "lr_d": 1e-4,
                  "beta1": 0.0, "beta2": 0.9, "ema_decay": 0.0},
    },
    "sngan": {
        "description": "SNGAN (Miyato et al. 2018): its CIFAR-10 ResNet (G 256 wide, D 128) with spectral norm in D "
                       "only, hinge loss, 5 D steps per G step, Adam 2e-4 betas 0 / 0.9 decayed linearly to 0; no "
                       "attention or EMA; 32x32",
        "model": {"arch": "resnet-sngan", "g_channels": 256, "d_channels": 128, "g_attention": [], "d_attention": [],
                  "g_spectral_norm": False, "d_spectral_norm": True, "init": "xavier"},
        "data": {"resolution": 32},
        "train": {"steps": 50_000, "batch_size": 64, "loss": "hinge", "n_dis": 5, "lr_g": 2e-4, "lr_d": 2e-4,
                  "beta1": 0.0, "beta2": 0.9, "lr_schedule": "linear", "ema_decay": 0.0},
    },
}


def preset(name: str) -> Config:
    """The config of a named preset."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset '{name}'; choose from {', '.join(PRESETS)}")
    cfg = Config(preset=name)
    update(cfg, {k: v for k, v in PRESETS[name].items() if k != "description"}, source=f"preset {name}")
    return cfg
