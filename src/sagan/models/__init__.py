"""SAGAN generators and discriminators: the reference networks, plain PyTorch, checkable against the papers.

A backbone is one module with a generator and a discriminator class, registered in BACKBONES; `model.arch` takes its
choices from there. The CPU accelerations are `sagan.kernels`, installed on built networks by `train.kernels=auto`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from torch import nn

from .attention import ATTENTION, POSITIONS, AttentionBlock, AttentionOptions, SelfAttention, attention_layers
from .base import Generator, Network
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .layers import INITS
from .resnet import ResNetDiscriminator, ResNetGenerator

if TYPE_CHECKING:
    from ..config import ModelConfig

__all__ = ["ATTENTION", "BACKBONES", "INITS", "POSITIONS", "AttentionBlock", "AttentionOptions", "Backbone",
           "Generator", "Network", "SelfAttention", "attention_layers", "build_discriminator", "build_generator"]


@dataclass(frozen=True)
class Backbone:
    generator: type[Generator]
    discriminator: type[Network]
    design: str  # a key of the module's DESIGNS
    options: tuple[str, ...] = ()  # the ModelConfig fields its nets take, by the same name

    def attention_resolutions(self, net: str, resolution: int) -> list[int]:
        """The feature resolutions of the generator or discriminator (`net`) that attention may follow."""
        return getattr(self, net).attention_resolutions(resolution, self.design)

    def options_of(self, cfg: ModelConfig) -> dict:
        return {name: getattr(cfg, name) for name in self.options}

    def deformable_resolutions(self, net: str, resolution: int) -> list[int]:
        """The output resolutions of the blocks of `net` whose convolutions may be deformable."""
        return getattr(self, net).deformable_resolutions(resolution, self.design)


BACKBONES = {
    "resnet": Backbone(ResNetGenerator, ResNetDiscriminator, "sagan"),  # the SAGAN paper's networks
    "dcgan": Backbone(DCGANGenerator, DCGANDiscriminator, "sagan"),  # the popular 64x64 PyTorch SAGAN's
    "dcgan-radford": Backbone(DCGANGenerator, DCGANDiscriminator, "radford"),  # DCGAN's own
    "resnet-wgan-gp": Backbone(ResNetGenerator, ResNetDiscriminator, "wgan-gp"),  # WGAN-GP's CIFAR-10 ResNet
    "resnet-sngan": Backbone(ResNetGenerator, ResNetDiscriminator, "sngan"),  # SNGAN's CIFAR-10 ResNet
    # the paper's nets with MobileNetV2 blocks
    "mobilenet": Backbone(ResNetGenerator, ResNetDiscriminator, "mobilenet", options=("expansion",)),
}


def build_generator(cfg: ModelConfig, resolution: int, channels: int) -> Generator:
    backbone = BACKBONES[cfg.arch]
    return backbone.generator(
        resolution, channels, z_dim=cfg.z_dim, width=cfg.g_channels, attention=cfg.g_attention,
        attention_form=attention_options(cfg), spectral_norm=cfg.g_spectral_norm, num_classes=cfg.num_classes,
        init=cfg.init, design=backbone.design, deformable=cfg.g_deformable, **backbone.options_of(cfg))


def build_discriminator(cfg: ModelConfig, resolution: int, channels: int) -> nn.Module:
    backbone = BACKBONES[cfg.arch]
    return backbone.discriminator(
        resolution, channels, width=cfg.d_channels, attention=cfg.d_attention, attention_form=attention_options(cfg),
        spectral_norm=cfg.d_spectral_norm, num_classes=cfg.num_classes, init=cfg.init, design=backbone.design,
        deformable=cfg.d_deformable, **backbone.options_of(cfg))


def attention_options(cfg: ModelConfig) -> AttentionOptions:
    return AttentionOptions(cfg.attention, cfg.attention_heads, cfg.attention_window, cfg.attention_points,
                            cfg.attention_pos)
