"""Building blocks shared by the backbones: initialised, optionally spectrally normalised layers and batch norm
that becomes conditional when there are classes."""

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

from .conv import Conv2d, ConvTranspose2d

INITS = {
    "orthogonal": nn.init.orthogonal_,
    "xavier": nn.init.xavier_uniform_,
}


class LayerFactory:
    """Makes conv / linear / embedding layers with one init scheme and, unless told otherwise, spectral norm.

    The weight is initialised before spectral norm is attached, so the power-iteration vectors start from the
    initialised weight.
    """

    def __init__(self, spectral_norm: bool = True, init: str = "orthogonal"):
        self.spectral_norm = spectral_norm
        self.init = INITS[init]

    def conv(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True,
             sn: bool | None = None) -> nn.Module:
        return self._finish(Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias), sn)

    def conv_transpose(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                       sn: bool | None = None) -> nn.Module:
        return self._finish(ConvTranspose2d(in_ch, out_ch, kernel, stride, padding), sn)

    def linear(self, in_features: int, out_features: int, sn: bool | None = None) -> nn.Module:
        return self._finish(nn.Linear(in_features, out_features), sn)

    def embedding(self, num: int, dim: int, sn: bool | None = None) -> nn.Module:
        return self._finish(nn.Embedding(num, dim), sn)

    def _finish(self, layer: nn.Module, sn: bool | None) -> nn.Module:
        self.init(layer.weight)
        if getattr(layer, "bias", None) is not None:
            nn.init.zeros_(layer.bias)
        if self.spectral_norm if sn is None else sn:
            # As torch's spectral_norm: a transposed convolution's output channels are its weight's dim 1.
            dim = 1 if isinstance(layer, nn.ConvTranspose2d) else 0
            parametrize.register_parametrization(layer, "weight", SpectralNorm(layer.weight, dim=dim))
        return layer


class SpectralNorm(_SpectralNorm):
    """`torch.nn.utils.parametrizations.spectral_norm` (same buffers and state-dict keys: `...weight.0._u`, `_v`),
    with the power iteration and the division by sigma kept in float32 under autocast: in bf16 or fp16 the sigma
    estimate would lose precision, and casting the weight for each matrix-vector product costs a kernel each."""

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            return super().forward(weight)


class BatchNorm(nn.Module):
    """BatchNorm2d; with `num_classes > 0`, conditional BN: per-class gain and bias replace the affine parameters."""

    def __init__(self, channels: int, num_classes: int = 0):
        super().__init__()
        self.bn = nn.BatchNorm2d(channels, affine=num_classes == 0)
        if num_classes:
            self.gain = nn.Embedding(num_classes, channels)
            self.bias = nn.Embedding(num_classes, channels)
            nn.init.ones_(self.gain.weight)
            nn.init.zeros_(self.bias.weight)

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = self.bn(x)
        if self.bn.affine:
            return x
        return x * self.gain(y)[:, :, None, None] + self.bias(y)[:, :, None, None]
