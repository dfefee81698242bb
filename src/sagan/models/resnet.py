"""ResNet GAN nets, in three designs (DESIGNS) that share their blocks:

- `sagan`, the SAGAN paper's and its released code's (128x128: G 1024@4 -> up-blocks 1024@8, 512@16, 256@32,
  attention, 128@64, 64@128 -> BN-ReLU-conv3x3-tanh; D: optimized block 64@64, 128@32, attention, 256@16, 512@8,
  1024@4, a 1024@4 block without downsampling, ReLU, global sum pool, linear). Other resolutions keep the rule
  behind those widths: `width * min(16, resolution / r)` channels at feature resolution r in G and
  `width * min(16, resolution / 2r)` in D, so 64x64 and 32x32 nets are the 128x128 ones without their
  highest-resolution blocks, scaled down.
- `wgan-gp`, Gulrajani et al.'s CIFAR-10 ResNet (arXiv 1704.00028 and its gan_cifar_resnet.py): `width`
  channels everywhere; G: linear to 4x4, up-blocks to the resolution; D: optimized block, down-blocks to 8x8, two
  blocks without downsampling, ReLU, global mean pool, linear. No normalisation in D.
- `sngan`, Miyato et al.'s CIFAR-10 ResNet (arXiv 1802.05957 and its released code): the same nets with a global
  sum pool (their G is 256 wide, their D 128).

At 32x32 the last two are their papers' nets; other resolutions add or remove one block per octave at the same
width."""

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .base import Generator, Network, check_attention
from .layers import BatchNorm, LayerFactory


@dataclass(frozen=True)
class Design:
    """What differs between the ResNets of SAGAN, WGAN-GP and SNGAN."""

    widening: bool  # widths grow towards low resolutions (width * min(16, ...)); false: `width` everywhere
    d_lowest: int  # D downsamples to this feature resolution ...
    d_plain_blocks: int  # ... then runs this many blocks without downsampling
    d_pool: str  # sum | mean: D's global pooling before its linear layer


DESIGNS = {"sagan": Design(True, 4, 1, "sum"), "wgan-gp": Design(False, 8, 2, "mean"),
           "sngan": Design(False, 8, 2, "sum")}


class GBlock(nn.Module):
    """BN-ReLU-upsample-conv3x3-BN-ReLU-conv3x3, plus an upsampled 1x1-conv shortcut."""

    def __init__(self, in_ch: int, out_ch: int, layers: LayerFactory, num_classes: int):
        super().__init__()
        self.norm1 = BatchNorm(in_ch, num_classes)
        self.conv1 = layers.conv(in_ch, out_ch, 3, padding=1)
        self.norm2 = BatchNorm(out_ch, num_classes)
        self.conv2 = layers.conv(out_ch, out_ch, 3, padding=1)
        self.shortcut = layers.conv(in_ch, out_ch, 1)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2, mode="nearest")
        h = self.conv2(F.relu(self.norm2(self.conv1(h), y)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))


class DBlock(nn.Module):
    """ReLU-conv3x3-ReLU-conv3x3(-avgpool), plus a 1x1-conv(-avgpool) shortcut when the shape changes.
    The first block (`optimized`) has no leading ReLU and pools its shortcut before the 1x1 conv, as in the
    released code."""

    def __init__(self, in_ch: int, out_ch: int, layers: LayerFactory, downsample: bool = True,
                 optimized: bool = False):
        super().__init__()
        self.downsample, self.optimized = downsample, optimized
        self.conv1 = layers.conv(in_ch, out_ch, 3, padding=1)
        self.conv2 = layers.conv(out_ch, out_ch, 3, padding=1)
        self.shortcut = layers.conv(in_ch, out_ch, 1) if downsample or in_ch != out_ch else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.optimized else F.relu(x))))
        if self.downsample:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is None:
            return h + x
        if self.optimized:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)


class ResNetGenerator(Generator):
    @staticmethod
    def attention_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The feature resolutions that attention may follow."""
        return [2**i for i in range(3, int(math.log2(resolution)) + 1)]

    def __init__(self, resolution: int, channels: int = 3, z_dim: int = 128, width: int = 64,
                 attention: Sequence[int] = (32,), attention_form: str = "paper", spectral_norm: bool = True,
                 num_classes: int = 0, init: str = "orthogonal", design: str = "sagan"):
        super().__init__(resolution, channels, z_dim, num_classes)
        check_attention(attention, self.attention_resolutions(resolution, design), "resnet generator")
        layers, widening = LayerFactory(spectral_norm, init), DESIGNS[design].widening

        def widths(r: int) -> int:
            return width * min(16, resolution // r) if widening else width

        self.linear = layers.linear(z_dim, 4 * 4 * widths(4))
        res = 4
        while res < resolution:
            res *= 2
            self.add_block(f"block{res}", GBlock(widths(res // 2), widths(res), layers, num_classes))
            self.add_attention(res, widths(res), attention, attention_form, spectral_norm, init)
        self.norm = BatchNorm(widths(resolution))
        self.to_rgb = layers.conv(widths(resolution), channels, 3, padding=1)

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.linear(z).view(z.shape[0], -1, 4, 4)
        x = self.run_blocks(x, y)
        return torch.tanh(self.to_rgb(F.relu(self.norm(x))))


class ResNetDiscriminator(Network):
    """Conditional: adds the projection term <embed(y), sum-pooled features> (Miyato & Koyama 2018)."""

    @staticmethod
    def attention_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The feature resolutions that attention may follow."""
        return [2**i for i in range(int(math.log2(DESIGNS[design].d_lowest)), int(math.log2(resolution)))]

    def __init__(self, resolution: int, channels: int = 3, width: int = 64, attention: Sequence[int] = (32,),
                 attention_form: str = "paper", spectral_norm: bool = True, num_classes: int = 0,
                 init: str = "orthogonal", design: str = "sagan"):
        super().__init__()
        check_attention(attention, self.attention_resolutions(resolution, design), "resnet discriminator")
        layers, d = LayerFactory(spectral_norm, init), DESIGNS[design]
        self.pool = d.d_pool

        def widths(r: int) -> int:
            return width * min(16, resolution // (2 * r)) if d.widening else width

        res = resolution // 2
        self.add_block(f"block{res}", DBlock(channels, widths(res), layers, optimized=True))
        self.add_attention(res, widths(res), attention, attention_form, spectral_norm, init)
        while res > d.d_lowest:
            res //= 2
            self.add_block(f"block{res}", DBlock(widths(res * 2), widths(res), layers))
            self.add_attention(res, widths(res), attention, attention_form, spectral_norm, init)
        for i in range(d.d_plain_blocks):
            self.add_block(f"block{res}{'bcdefg'[i]}", DBlock(widths(res), widths(res), layers, downsample=False))
        self.linear = layers.linear(widths(res), 1)
        self.embed = layers.embedding(num_classes, widths(res)) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        h = F.relu(self.run_blocks(x, y))
        h = h.sum(dim=(2, 3)) if self.pool == "sum" else h.mean(dim=(2, 3))
        out = self.linear(h).flatten()
        if self.embed is not None:
            out = out + (self.embed(y) * h).sum(dim=1)
        return out
