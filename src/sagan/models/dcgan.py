"""DCGAN nets: transposed convs + BN + ReLU in G, strided convs + LeakyReLU in D, unnormalised last layers, with two
designs (DESIGNS):

- `sagan`, the popular 64x64 PyTorch SAGAN's: no BN in D, LeakyReLU(0.1), 4x4 kernels. At 64x64 with width 64 the
  layer shapes equal that implementation's (G: 128->512@4->256@8->128@16->attn->64@32->attn->3@64; D:
  3->64@32->128@16->256@8->attn->512@4->attn->1).
- `radford`, DCGAN's own (Radford et al. 2015, arXiv 1511.06434, section 3 and figure 1): BN in D after every conv
  but the first, LeakyReLU(0.2), 5x5 kernels in the strided layers (figure 1 and its released code); a conv
  followed by BN has no bias, BN's shift replaces it. With width 128 at 64x64, figure 1's widths: G
  100->1024@4->512@8->256@16->128@32->3@64, D the mirror 3->128@32->256@16->512@8->1024@4->1.

The first G layer maps z to 4x4 (a transposed conv on a 1x1 map: the paper's "project and reshape") and the last D
layer maps 4x4 to one logit (its flatten + linear). Other power-of-two resolutions add or remove one block per
octave."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionOptions
from .base import Generator, Network, check_attention
from .layers import BatchNorm, LayerFactory


@dataclass(frozen=True)
class Design:
    """What differs between the DCGAN of the popular SAGAN and Radford et al.'s."""

    d_batch_norm: bool  # BN after D's convs but the first
    slope: float  # D's LeakyReLU slope
    kernel: int  # kernel size of the stride-2 convs (4, or 5 with padding 2 and output padding 1)
    norm_bias: bool  # convs followed by BN keep their bias


DESIGNS = {"sagan": Design(False, 0.1, 4, True), "radford": Design(True, 0.2, 5, False)}


class UpBlock(nn.Module):
    def __init__(self, conv: nn.Module, out_ch: int, num_classes: int):
        super().__init__()
        self.conv = conv
        self.norm = BatchNorm(out_ch, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x), y), inplace=True)


class DownBlock(nn.Module):
    def __init__(self, conv: nn.Module, slope: float, norm: nn.Module | None = None):
        super().__init__()
        self.conv, self.slope, self.norm = conv, slope, norm

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        x = self.conv(x)
        return F.leaky_relu(x if self.norm is None else self.norm(x), self.slope, inplace=True)


def stride2(design: Design) -> dict:
    """Kernel and padding of a conv that halves (or a transposed conv that doubles) the map."""
    return {"kernel": design.kernel, "stride": 2, "padding": (design.kernel - 1) // 2}


class DCGANMaps:
    """The feature maps of G and D, the same in both: every power of two from 4x4 to resolution / 2."""

    @staticmethod
    def attention_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The feature resolutions that attention may follow."""
        return [2**i for i in range(2, int(math.log2(resolution)))]

    @staticmethod
    def deformable_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """None: the strided and transposed convolutions have no deformable form."""
        return []


class DCGANGenerator(DCGANMaps, Generator):
    """Width `width * resolution / 8` at 4x4, halved at every upsampling, `width` at resolution / 2."""

    def __init__(self, resolution: int, channels: int = 3, z_dim: int = 128, width: int = 64,
                 attention: Sequence[int] = (16, 32), attention_form: str | AttentionOptions = "popular",
                 spectral_norm: bool = True, num_classes: int = 0, init: str = "orthogonal", design: str = "sagan",
                 deformable: Sequence[int] = ()):
        super().__init__(resolution, channels, z_dim, num_classes)
        check_attention(attention, self.attention_resolutions(resolution, design), "dcgan generator")
        check_attention(deformable, self.deformable_resolutions(resolution, design), "dcgan generator",
                        "deformable")
        layers, d = LayerFactory(spectral_norm, init), DESIGNS[design]
        ch = width * resolution // 8
        self.add_block("block4", UpBlock(layers.conv_transpose(z_dim, ch, 4, bias=d.norm_bias), ch, num_classes))
        self.add_attention(4, ch, attention, attention_form, spectral_norm, init)
        res = 4
        while res < resolution // 2:
            res *= 2
            conv = layers.conv_transpose(ch, ch // 2, **stride2(d), bias=d.norm_bias)
            self.add_block(f"block{res}", UpBlock(conv, ch // 2, num_classes))
            ch //= 2
            self.add_attention(res, ch, attention, attention_form, spectral_norm, init)
        self.to_rgb = layers.conv_transpose(ch, channels, **stride2(d), sn=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.run_blocks(z[:, :, None, None], y)
        return torch.tanh(self.to_rgb(x))


class DCGANDiscriminator(DCGANMaps, Network):
    """Width `width` at resolution / 2, doubled at every downsampling down to 4x4, then a 4x4 conv to one logit.
    Conditional: adds the projection term <embed(y), sum-pooled 4x4 features> (Miyato & Koyama 2018)."""

    def __init__(self, resolution: int, channels: int = 3, width: int = 64, attention: Sequence[int] = (8, 4),
                 attention_form: str | AttentionOptions = "popular", spectral_norm: bool = True,
                 num_classes: int = 0, init: str = "orthogonal", design: str = "sagan",
                 deformable: Sequence[int] = ()):
        super().__init__()
        check_attention(attention, self.attention_resolutions(resolution, design), "dcgan discriminator")
        check_attention(deformable, self.deformable_resolutions(resolution, design), "dcgan discriminator",
                        "deformable")
        layers, d = LayerFactory(spectral_norm, init), DESIGNS[design]
        ch_in, ch, res = channels, width, resolution
        while res > 4:
            res //= 2
            norm = d.d_batch_norm and res < resolution // 2  # not after the first conv
            conv = layers.conv(ch_in, ch, **stride2(d), bias=d.norm_bias or not norm)
            self.add_block(f"block{res}", DownBlock(conv, d.slope, BatchNorm(ch) if norm else None))
            self.add_attention(res, ch, attention, attention_form, spectral_norm, init)
            ch_in, ch = ch, ch * 2
        self.to_logit = layers.conv(ch_in, 1, 4, sn=False)
        self.embed = layers.embedding(num_classes, ch_in) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out, projection = self.terms(x, y)
        return out if projection is None else out + projection

    def terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output's two terms: the 4x4 conv's logit and the projection term (None when unconditional)."""
        h = self.run_blocks(x, y)
        return self.to_logit(h).flatten(), None if self.embed is None else (self.embed(y) * h.sum(dim=(2, 3))).sum(1)
