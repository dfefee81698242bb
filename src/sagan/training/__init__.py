"""Training: losses, the GAN update steps, the loop, checkpoints."""

from .checkpoint import load_generator
from .trainer import train

__all__ = ["train", "load_generator"]
