"""ResNet GAN nets, in four designs (DESIGNS) that share their frame:

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
- `mobilenet`: the `sagan` nets with MobileNetV2's inverted residuals (1x1 expansion by `expansion`, depthwise
  3x3, linear 1x1 projection) in place of the two 3x3 convolutions of every block.

At 32x32 `wgan-gp` and `sngan` are their papers' nets; other resolutions add or remove one block per octave at the
same width."""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from .attention import AttentionOptions
from .base import Generator, Network, check_attention
from .layers import BatchNorm, LayerFactory


@dataclass(frozen=True)
class Design:
    """What differs between the ResNets of SAGAN, WGAN-GP and SNGAN, and the MobileNet-style nets."""

    widening: bool  # widths grow towards low resolutions (width * min(16, ...)); false: `width` everywhere
    d_lowest: int  # D downsamples to this feature resolution ...
    d_plain_blocks: int  # ... then runs this many blocks without downsampling
    d_pool: str  # sum | mean: D's global pooling before its linear layer
    inverted: bool = False  # inverted-residual blocks (InvertedGBlock, InvertedDBlock) instead of GBlock, DBlock


DESIGNS = {"sagan": Design(True, 4, 1, "sum"), "wgan-gp": Design(False, 8, 2, "mean"),
           "sngan": Design(False, 8, 2, "sum"), "mobilenet": Design(True, 4, 1, "sum", inverted=True)}


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
        return self.branch(x, y) + self.shortcut(F.interpolate(x, scale_factor=2, mode="nearest"))

    def branch(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2, mode="nearest")
        return self.conv2(F.relu(self.norm2(self.conv1(h), y)))


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
        h = self.branch(x)
        if self.shortcut is None:
            return h + x
        if self.optimized:
            return h + self.shortcut(F.avg_pool2d(x, 2))
        s = self.shortcut(x)
        return h + (F.avg_pool2d(s, 2) if self.downsample else s)

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.optimized else F.relu(x))))
        return F.avg_pool2d(h, 2) if self.downsample else h


class InvertedGBlock(GBlock):
    """MobileNetV2's inverted residual (Sandler et al. 2018) in GBlock's pre-activation order:
    BN-ReLU-upsample-expand1x1-BN-ReLU-depthwise3x3-BN-ReLU-project1x1, the projection added without an activation
    (the linear bottleneck); the same shortcut."""

    def __init__(self, in_ch: int, out_ch: int, layers: LayerFactory, num_classes: int, expansion: int = 6):
        nn.Module.__init__(self)
        wide = in_ch * expansion
        self.norm1 = BatchNorm(in_ch, num_classes)
        self.expand = layers.conv(in_ch, wide, 1)
        self.norm2 = BatchNorm(wide, num_classes)
        self.depthwise = layers.conv(wide, wide, 3, padding=1, groups=wide)
        self.norm3 = BatchNorm(wide, num_classes)
        self.project = layers.conv(wide, out_ch, 1)
        self.shortcut = layers.conv(in_ch, out_ch, 1)

    def branch(self, x: torch.Tensor, y: torch.Tensor | None) -> torch.Tensor:
        h = self.expand(F.interpolate(F.relu(self.norm1(x, y)), scale_factor=2, mode="nearest"))
        h = self.depthwise(F.relu(self.norm2(h, y)))
        return self.project(F.relu(self.norm3(h, y)))


class InvertedDBlock(DBlock):
    """ReLU-expand1x1-ReLU-depthwise3x3(-avgpool)-ReLU-project1x1; DBlock's shortcut."""

    def __init__(self, in_ch: int, out_ch: int, layers: LayerFactory, downsample: bool = True,
                 optimized: bool = False, expansion: int = 6):
        nn.Module.__init__(self)
        self.downsample, self.optimized = downsample, optimized
        wide = in_ch * expansion
        self.expand = layers.conv(in_ch, wide, 1)
        self.depthwise = layers.conv(wide, wide, 3, padding=1, groups=wide)
        self.project = layers.conv(wide, out_ch, 1)
        self.shortcut = layers.conv(in_ch, out_ch, 1) if downsample or in_ch != out_ch else None

    def branch(self, x: torch.Tensor) -> torch.Tensor:
        h = self.depthwise(F.relu(self.expand(x if self.optimized else F.relu(x))))
        return self.project(F.relu(F.avg_pool2d(h, 2) if self.downsample else h))


class ResNetGenerator(Generator):
    @staticmethod
    def attention_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The feature resolutions that attention may follow: the output resolutions of the blocks."""
        return [2**i for i in range(3, int(math.log2(resolution)) + 1)]

    @staticmethod
    def deformable_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The blocks whose 3x3 convolutions may be deformable: all but the inverted ones' (depthwise)."""
        return [] if DESIGNS[design].inverted else ResNetGenerator.attention_resolutions(resolution, design)

    def __init__(self, resolution: int, channels: int = 3, z_dim: int = 128, width: int = 64,
                 attention: Sequence[int] = (32,), attention_form: str | AttentionOptions = "paper",
                 spectral_norm: bool = True, num_classes: int = 0, init: str = "orthogonal", design: str = "sagan",
                 deformable: Sequence[int] = (), expansion: int = 6):
        super().__init__(resolution, channels, z_dim, num_classes)
        check_attention(attention, self.attention_resolutions(resolution, design), "resnet generator")
        check_attention(deformable, self.deformable_resolutions(resolution, design), "resnet generator",
                        "deformable")
        layers, d = LayerFactory(spectral_norm, init), DESIGNS[design]
        block = partial(InvertedGBlock, expansion=expansion) if d.inverted else GBlock

        def layers_at(r: int) -> LayerFactory:  # deformable 3x3 convolutions in the blocks that output r x r
            return LayerFactory(spectral_norm, init, deformable=r in deformable)

        def widths(r: int) -> int:
            return width * min(16, resolution // r) if d.widening else width

        self.linear = layers.linear(z_dim, 4 * 4 * widths(4))
        res = 4
        while res < resolution:
            res *= 2
            self.add_block(f"block{res}", block(widths(res // 2), widths(res), layers_at(res), num_classes))
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
        """The feature resolutions that attention may follow: the output resolutions of the blocks."""
        return [2**i for i in range(int(math.log2(DESIGNS[design].d_lowest)), int(math.log2(resolution)))]

    @staticmethod
    def deformable_resolutions(resolution: int, design: str = "sagan") -> list[int]:
        """The blocks whose 3x3 convolutions may be deformable: all but the inverted ones' (depthwise)."""
        return [] if DESIGNS[design].inverted else ResNetDiscriminator.attention_resolutions(resolution, design)

    def __init__(self, resolution: int, channels: int = 3, width: int = 64, attention: Sequence[int] = (32,),
                 attention_form: str | AttentionOptions = "paper", spectral_norm: bool = True,
                 num_classes: int = 0, init: str = "orthogonal", design: str = "sagan",
                 deformable: Sequence[int] = (), expansion: int = 6):
        super().__init__()
        check_attention(attention, self.attention_resolutions(resolution, design), "resnet discriminator")
        check_attention(deformable, self.deformable_resolutions(resolution, design), "resnet discriminator",
                        "deformable")
        layers, d = LayerFactory(spectral_norm, init), DESIGNS[design]
        block = partial(InvertedDBlock, expansion=expansion) if d.inverted else DBlock
        self.pool = d.d_pool

        def layers_at(r: int) -> LayerFactory:  # deformable 3x3 convolutions in the blocks that output r x r
            return LayerFactory(spectral_norm, init, deformable=r in deformable)

        def widths(r: int) -> int:
            return width * min(16, resolution // (2 * r)) if d.widening else width

        res = resolution // 2
        self.add_block(f"block{res}", block(channels, widths(res), layers_at(res), optimized=True))
        self.add_attention(res, widths(res), attention, attention_form, spectral_norm, init)
        while res > d.d_lowest:
            res //= 2
            self.add_block(f"block{res}", block(widths(res * 2), widths(res), layers_at(res)))
            self.add_attention(res, widths(res), attention, attention_form, spectral_norm, init)
        for i in range(d.d_plain_blocks):
            plain = block(widths(res), widths(res), layers_at(res), downsample=False)
            self.add_block(f"block{res}{'bcdefg'[i]}", plain)
        self.linear = layers.linear(widths(res), 1)
        self.embed = layers.embedding(num_classes, widths(res)) if num_classes else None

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        out, projection = self.terms(x, y)
        return out if projection is None else out + projection

    def terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The output's two terms: the linear layer's and the projection term (None when unconditional)."""
        h = F.relu(self.run_blocks(x, y))
        h = h.sum(dim=(2, 3)) if self.pool == "sum" else h.mean(dim=(2, 3))
        return self.linear(h).flatten(), None if self.embed is None else (self.embed(y) * h).sum(dim=1)
