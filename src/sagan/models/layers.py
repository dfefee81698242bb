"""Building blocks shared by the backbones: initialised, optionally spectrally normalised layers and batch norm
that becomes conditional when there are classes."""

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from .deformable import DeformConv2d

INITS = {
    "orthogonal": nn.init.orthogonal_,  # the SAGAN code's
    "xavier": nn.init.xavier_uniform_,  # Glorot uniform, as the WGAN-GP and SNGAN code's shortcuts and linear layers
    "normal": lambda w: nn.init.normal_(w, 0.0, 0.02),  # DCGAN's N(0, 0.02)
}


class LayerFactory:
    """Makes conv / linear / embedding layers with one init scheme and, unless told otherwise, spectral norm; with
    `deformable`, its stride-1 'same' convolutions larger than 1x1 (not grouped) are deformable (DeformConv2d).

    The weight is initialised before spectral norm is attached, so the power-iteration vectors start from the
    initialised weight.
    """

    def __init__(self, spectral_norm: bool = True, init: str = "orthogonal", deformable: bool = False):
        self.spectral_norm, self.deformable = spectral_norm, deformable
        self.init = INITS[init]

    def conv(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0, bias: bool = True,
             sn: bool | None = None, groups: int = 1) -> nn.Module:
        if self.deformable and kernel > 1 and stride == 1 and padding == kernel // 2 and groups == 1:
            return self._finish(DeformConv2d(in_ch, out_ch, kernel, bias=bias), sn)
        return self._finish(nn.Conv2d(in_ch, out_ch, kernel, stride, padding, bias=bias, groups=groups), sn)

    def conv_transpose(self, in_ch: int, out_ch: int, kernel: int, stride: int = 1, padding: int = 0,
                       bias: bool = True, sn: bool | None = None) -> nn.Module:
        # An odd kernel with padding (k - 1) / 2 needs one row of output padding to double the map exactly.
        output_padding = stride - 1 if kernel % 2 else 0
        return self._finish(nn.ConvTranspose2d(in_ch, out_ch, kernel, stride, padding, output_padding, bias=bias),
                            sn)

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


class SpectralNorm(nn.Module):
    """The weight divided by its largest singular value sigma, estimated by one power iteration per training forward
    (Miyato et al. 2018). The same arithmetic, random draws and state-dict keys (`...weight.0._u`, `_v`) as
    `torch.nn.utils.parametrizations.spectral_norm`, but kept in float32 under autocast: in bf16 or fp16 the
    sigma estimate would lose precision."""

    def __init__(self, weight: torch.Tensor, dim: int = 0, eps: float = 1e-12):
        super().__init__()
        self.dim, self.eps = dim, eps
        matrix = self._matrix(weight)
        self.register_buffer("_u", F.normalize(matrix.new_empty(matrix.shape[0]).normal_(0, 1), dim=0, eps=eps))
        self.register_buffer("_v", F.normalize(matrix.new_empty(matrix.shape[1]).normal_(0, 1), dim=0, eps=eps))
        self._power_iteration(matrix, 15)

    def _matrix(self, weight: torch.Tensor) -> torch.Tensor:
        """The weight as (output channels, everything else)."""
        if self.dim != 0:
            weight = weight.movedim(self.dim, 0)
        return weight.flatten(1)

    @torch.no_grad()
    def _power_iteration(self, matrix: torch.Tensor, iterations: int) -> None:
        for _ in range(iterations):
            self._u = F.normalize(torch.mv(matrix, self._v), dim=0, eps=self.eps, out=self._u)
            self._v = F.normalize(torch.mv(matrix.H, self._u), dim=0, eps=self.eps, out=self._v)

    def forward(self, weight: torch.Tensor) -> torch.Tensor:
        with torch.autocast(weight.device.type, enabled=False):
            matrix = self._matrix(weight)
            if self.training:
                self._power_iteration(matrix, 1)
            # Clones: the power iteration of the next forward updates the vectors in place.
            sigma = torch.vdot(self._u.clone(), torch.mv(matrix, self._v.clone()))
            return weight / sigma

    def right_inverse(self, value: torch.Tensor) -> torch.Tensor:
        return value


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
