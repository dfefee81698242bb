"""What every generator and discriminator shares: their stack of named blocks, attention placement and sampling."""

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from ..errors import ConfigError
from ..images import to_uint8
from .attention import AttentionBlock, AttentionOptions, build


class Network(nn.Module):
    """A stack of named blocks (`block8`, `attn32`, ...) run in order; blocks other than attention take labels."""

    def __init__(self):
        super().__init__()
        self.blocks = nn.ModuleDict()

    def add_block(self, name: str, block: nn.Module) -> None:
        self.blocks[name] = block

    def add_attention(self, resolution: int, channels: int, requested: Sequence[int], form: str | AttentionOptions,
                      sn: bool, init: str) -> None:
        """Insert self-attention (a form name or its options) after the block just added when its output
        `resolution` is requested."""
        if resolution in requested:
            options = form if isinstance(form, AttentionOptions) else AttentionOptions(form)
            self.blocks[f"attn{resolution}"] = build(options, channels, resolution, sn, init)

    def run_blocks(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        for block in self.blocks.values():
            x = block(x) if isinstance(block, AttentionBlock) else block(x, y)
        return x


def check_attention(requested: Sequence[int], available: Sequence[int], net: str, option: str = "attention") -> None:
    """`requested` resolutions (of model.g_OPTION or d_OPTION) must be among the `available` ones of `net`."""
    bad = sorted(set(requested) - set(available))
    if bad:
        key = f"model.{'g' if net.endswith('generator') else 'd'}_{option}"
        raise ConfigError(f"{key}: {bad} not a feature resolution of this {net}; "
                          f"choose from {sorted(available) or 'none: it has no layer of that kind'}")


class Generator(Network):
    """Maps latents z (and class labels when conditional) to images in [-1, 1]."""

    def __init__(self, resolution: int, channels: int, z_dim: int, num_classes: int):
        super().__init__()
        self.resolution, self.channels, self.z_dim, self.num_classes = resolution, channels, z_dim, num_classes

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, labels: int | Sequence[int] | None = None,
               batch_size: int = 64, truncation: float | None = None) -> np.ndarray:
        """Generate `n` images as uint8 NHWC. Latents (and labels, when not given) are drawn on the CPU from `seed`,
        so a seed gives the same images on every device; `truncation` T redraws latent entries with |z| > T.
        Call it on a generator in eval mode."""
        rng = seeded(seed) if seed is not None else None
        z = truncated_normal((n, self.z_dim), truncation, rng)
        return self.generate(z, self.make_labels(n, labels, rng), batch_size)

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None, batch_size: int = 64) -> np.ndarray:
        """The images of latents `z` (and labels `y`) as uint8 NHWC, computed `batch_size` at a time."""
        device = next(self.parameters()).device
        out = []
        for i in range(0, len(z), batch_size):
            yb = None if y is None else y[i : i + batch_size].to(device)
            out.append(to_uint8(self(z[i : i + batch_size].to(device), yb)))
        return np.concatenate(out)

    def make_labels(self, n: int, labels: int | Sequence[int] | None,
                    rng: torch.Generator | None = None) -> torch.Tensor | None:
        """Labels for `n` samples: None when unconditional, else the given class(es) or random ones."""
        if not self.num_classes:
            if labels is not None:
                raise ConfigError("this generator is not class-conditional; do not pass a class")
            return None
        if labels is None:
            return torch.randint(self.num_classes, (n,), generator=rng)
        y = torch.as_tensor(labels, dtype=torch.long).expand(n) if np.ndim(labels) == 0 else torch.as_tensor(labels)
        if len(y) != n or y.min() < 0 or y.max() >= self.num_classes:
            raise ConfigError(f"class labels must be {n} values in 0..{self.num_classes - 1}")
        return y.clone()


def seeded(seed: int) -> torch.Generator:
    """A CPU random stream from a seed that a user gave: a whole number in [0, 2^63)."""
    if not 0 <= seed < 2**63:
        raise ConfigError(f"seed: {seed} is not in [0, 2^63)")
    return torch.Generator().manual_seed(seed)


def truncated_normal(shape: tuple[int, ...], threshold: float | None = None,
                     rng: torch.Generator | None = None) -> torch.Tensor:
    """Standard normal values; with `threshold` T, entries with |z| > T are redrawn until none is left (the
    truncation trick of BigGAN: less variety, higher fidelity)."""
    if threshold is not None and not threshold > 0:  # nan too
        raise ConfigError(f"truncation must be positive, got {threshold}")
    z = torch.randn(shape, generator=rng)
    while threshold is not None and (outside := z.abs() > threshold).any():
        z[outside] = torch.randn(int(outside.sum()), generator=rng)
    return z
