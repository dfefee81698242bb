"""SAGAN generators and discriminators, built from a ModelConfig."""

from ..config import ModelConfig
from .attention import SelfAttention, attention_layers
from .base import Generator, Network
from .dcgan import DCGANDiscriminator, DCGANGenerator
from .resnet import ResNetDiscriminator, ResNetGenerator

__all__ = ["SelfAttention", "attention_layers", "Generator", "Network", "build_generator", "build_discriminator"]

_ARCHS = {"dcgan": (DCGANGenerator, DCGANDiscriminator), "resnet": (ResNetGenerator, ResNetDiscriminator)}


def build_generator(cfg: ModelConfig, resolution: int, channels: int) -> Generator:
    cls = _ARCHS[cfg.arch][0]
    return cls(resolution, channels, z_dim=cfg.z_dim, width=cfg.g_channels, attention=cfg.g_attention,
               attention_form=cfg.attention, spectral_norm=cfg.g_spectral_norm, num_classes=cfg.num_classes,
               init=cfg.init)


def build_discriminator(cfg: ModelConfig, resolution: int, channels: int) -> Network:
    cls = _ARCHS[cfg.arch][1]
    return cls(resolution, channels, width=cfg.d_channels, attention=cfg.d_attention,
               attention_form=cfg.attention, spectral_norm=cfg.d_spectral_norm, num_classes=cfg.num_classes,
               init=cfg.init)
