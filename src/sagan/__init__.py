"""sagan: Self-Attention GANs (Zhang, Goodfellow, Metaxas and Odena, 2018) in PyTorch."""

from .checkpoints import load_generator

__version__ = "0.1.0"

__all__ = ["load_generator", "__version__"]
