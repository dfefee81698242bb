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
    design: str  # a key of the module's DESIGNS

    def attention_resolutions(self, net: str, resolution: int) -> list[int]:
        """The feature resolutions of the generator or discriminator (`net`) that attention may follow."""
        return getattr(self, net).attention_resolutions(resolution, self.design)


BACKBONES = {
    "resnet": Backbone(ResNetGenerator, ResNetDiscriminator, "sagan"),  # the SAGAN paper's networks
    "dcgan": Backbone(DCGANGenerator, DCGANDiscriminator, "sagan"),  # the popular 64x64 PyTorch SAGAN's
    "dcgan-radford": Backbone(DCGANGenerator, DCGANDiscriminator, "radford"),  # DCGAN's own
    "resnet-wgan-gp": Backbone(ResNetGenerator, ResNetDiscriminator, "wgan-gp"),  # WGAN-GP's CIFAR-10 ResNet
    "resnet-sngan": Backbone(ResNetGenerator, ResNetDiscriminator, "sngan"),  # SNGAN's CIFAR-10 ResNet
}


def build_generator(cfg: ModelConfig, resolution: int, channels: int) -> Generator:
    backbone = BACKBONES[cfg.arch]
    return backbone.generator(
        resolution, channels, z_dim=cfg.z_dim, width=cfg.g_channels, attention=cfg.g_attention,
        attention_form=cfg.attention, spectral_norm=cfg.g_spectral_norm, num_classes=cfg.num_classes, init=cfg.init,
        design=backbone.design)


def build_discriminator(cfg: ModelConfig, resolution: int, channels: int) -> nn.Module:
    backbone = BACKBONES[cfg.arch]
    return backbone.discriminator(
        resolution, channels, width=cfg.d_channels, attention=cfg.d_attention, attention_form=cfg.attention,
        spectral_norm=cfg.d_spectral_norm, num_classes=cfg.num_classes, init=cfg.init, design=backbone.design)
