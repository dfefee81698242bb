"""SAGAN generators and discriminators: the reference networks, plain PyTorch, checkable against the papers.

A backbone is one module with a generator and a discriminator class, registered in BACKBONES; `model.arch` takes its
choices from there. The CPU accelerations are `sagan.kernels`, installed on built networks by `train.kernels=auto`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from .attention import FORMS, SelfAttention, attention_layers
from .base import Generator, Network
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import INITS
from .resnet import ResNetDiscriminator, ResNetGenerator

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["BACKBONES", "FORMS", "INITS", "Backbone", "Generator", "Network", "SelfAttention", "attention_layers",
           "build_discriminator", "build_generator"]


@dataclass(frozen=True)
class Backbone:
    generator: type[Generator]
    discriminator: type[Network]


BACKBONES = {
    "resnet": Backbone(ResNetGenerator, ResNetDiscriminator),  # the paper's 128x128 networks
    "dcgan": Backbone(DCGANGenerator, DCGANDiscriminator),  # the popular 64x64 PyTorch SAGAN's
}


def build_generator(cfg: ModelConfig, resolution: int, channels: int) -> Generator:
    return BACKBONES[cfg.arch].generator(
        resolution, channels, z_dim=cfg.z_dim, width=cfg.g_channels, attention=cfg.g_attention,
        attention_form=cfg.attention, spectral_norm=cfg.g_spectral_norm, num_classes=cfg.num_classes, init=cfg.init)


def build_discriminator(cfg: ModelConfig, resolution: int, channels: int) -> nn.Module:
    return BACKBONES[cfg.arch].discriminator(
        resolution, channels, width=cfg.d_channels, attention=cfg.d_attention, attention_form=cfg.attention,
        spectral_norm=cfg.d_spectral_norm, num_classes=cfg.num_classes, init=cfg.init)
