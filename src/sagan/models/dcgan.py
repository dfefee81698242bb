"""DCGAN-style SAGAN nets, as in the popular 64x64 PyTorch SAGAN: transposed convs + BN + ReLU in G, strided convs +
LeakyReLU(0.1) in D, 4x4 kernels throughout, unnormalised last layers. At 64x64 with width 64 the layer shapes equal
that implementation's (G: 128->512@4->256@8->128@16->attn->64@32->attn->3@64; D: 3->64@32->128@16->256@8->attn->512@4
->attn->1); other power-of-two resolutions add or remove one block per octave."""

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator, Network, check_attention
from .layers import BatchNorm, LayerFactory


class UpBlock(nn.Module):
    def __init__(self, conv: nn.Module, out_ch: int, num_classes: int):
        super().__init__()
        self.conv = conv
        self.norm = BatchNorm(out_ch, num_classes)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return F.relu(self.norm(self.conv(x), y), inplace=True)


class DownBlock(nn.Module):
    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv = conv

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        return F.leaky_relu(self.conv(x), 0.1, inplace=True)


class DCGANGenerator(Generator):
    """Width `width * resolution / 8` at 4x4, halved at every upsampling, `width` at resolution / 2."""

    @staticmethod
    def attention_resolutions(resolution: int) -> list[int]:
        """The feature resolutions that attention may follow."""
        return [2**i for i in range(2, int(math.log2(resolution)))]

    def __init__(self, resolution: int, channels: int = 3, z_dim: int = 128, width: int = 64,
                 attention: Sequence[int] = (16, 32), attention_form: str = "popular", spectral_norm: bool = True,
                 num_classes: int = 0, init: str = "orthogonal"):
        super().__init__(resolution, channels, z_dim, num_classes)
        check_attention(attention, self.attention_resolutions(resolution), "dcgan generator")
        layers = LayerFactory(spectral_norm, init)
        ch = width * resolution // 8
        self.add_block("block4", UpBlock(layers.conv_transpose(z_dim, ch, 4), ch, num_classes))
        self.add_attention(4, ch, attention, attention_form, spectral_norm, init)
        res = 4
        while res < resolution // 2:
            res *= 2
            self.add_block(f"block{res}", UpBlock(layers.conv_transpose(ch, ch // 2, 4, 2, 1), ch // 2, num_classes))
            ch //= 2
            self.add_attention(res, ch, attention, attention_form, spectral_norm, init)
        self.to_rgb = layers.conv_transpose(ch, channels, 4, 2, 1, sn=False)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.run_blocks(z[:, :, None, None], y)
        return torch.tanh(self.to_rgb(x))


class DCGANDiscriminator(Network):
    """Width `width` at resolution / 2, doubled at every downsampling down to 4x4, then a 4x4 conv to one logit.
    Conditional: adds the projection term <embed(y), sum-pooled 4x4 features> (Miyato & Koyama 2018)."""

    @staticmethod
    def attention_resolutions(resolution: int) -> list[int]:
        """The feature resolutions that attention may follow."""
        return [2**i for i in range(2, int(math.log2(resolution)))]

    def __init__(self, resolution: int, channels: int = 3, width: int = 64, attention: Sequence[int] = (8, 4),
                 attention_form: str = "popular", spectral_norm: bool = True, num_classes: int = 0,
                 init: str = "orthogonal"):
        super().__init__()
        check_attention(attention, self.attention_resolutions(resolution), "dcgan discriminator")
        layers = LayerFactory(spectral_norm, init)
        ch_in, ch, res = channels, width, resolution
        while res > 4:
            res //= 2
            self.add_block(f"block{res}", DownBlock(layers.conv(ch_in, ch, 4, 2, 1)))
            self.add_attention(res, ch, attention, attention_form, spectral_norm, init)
            ch_in, ch = ch, ch * 2
        self.to_logit = layers.conv(ch_in, 1, 4, sn=False)
        self.embed = layers.embedding(num_classes, ch_in) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.run_blocks(x, y)
        out = self.to_logit(h).flatten()
        if self.embed is not None:
            out = out + (self.embed(y) * h.sum(dim=(2, 3))).sum(dim=1)
        return out
