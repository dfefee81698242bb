"""Building blocks shared by the backbones: initialised, optionally spectrally normalised layers and batch norm
that becomes conditional when there are classes."""

import torch
from torch import nn
from torch.nn.utils import parametrize
from torch.nn.utils.parametrizations import _SpectralNorm

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


def _cpu_bf16_autocast(x: torch.Tensor) -> bool:
    return (x.device.type == "cpu" and torch.is_autocast_enabled("cpu")
            and torch.get_autocast_dtype("cpu") == torch.bfloat16)


class _ConvFloatWeightGrad(torch.autograd.Function):
    """A bf16 convolution (or transposed convolution) whose weight and bias gradients are computed in float32.

    For the 4x4 (transposed) convolutions of these nets, oneDNN's bf16 weight-gradient kernels run 2-8x slower than
    its float32 ones on AVX512-BF16 CPUs (measured with ONEDNN_VERBOSE), while its bf16 forward and input-gradient
    kernels are the faster ones. The forward and the input gradient are exactly autocast's; the weight gradient
    takes the same bf16-rounded operands and only skips the final rounding of the result to bf16.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, dilation, transposed, output_padding, groups):
        x, w = x.to(torch.bfloat16), weight.to(torch.bfloat16)
        b = None if bias is None else bias.to(torch.bfloat16)
        ctx.save_for_backward(x, w)
        ctx.conv = (stride, padding, dilation, transposed, output_padding, groups)
        ctx.bias_shape = None if bias is None else bias.shape
        with torch.autocast("cpu", enabled=False):
            return torch.ops.aten.convolution(x, w, b, *ctx.conv)

    @staticmethod
    def backward(ctx, grad):
        x, w = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad[:3]
        grad_x = grad_w = grad_b = None
        if need_x:
            grad_x = torch.ops.aten.convolution_backward(grad, x, w, ctx.bias_shape, *ctx.conv,
                                                         [True, False, False])[0]
        if need_w or need_b:
            _, grad_w, grad_b = torch.ops.aten.convolution_backward(
                grad.float(), x.float(), w.float(), ctx.bias_shape, *ctx.conv, [False, need_w, need_b])
        return grad_x, grad_w, grad_b, None, None, None, None, None, None


class Conv2d(nn.Conv2d):
    """nn.Conv2d; under CPU bf16 autocast, float32 weight gradients (see _ConvFloatWeightGrad) except for 1x1
    kernels, whose bf16 weight-gradient kernel is the faster one."""

    def _conv_forward(self, x, weight, bias):
        if self.padding_mode != "zeros" or self.kernel_size == (1, 1) or not _cpu_bf16_autocast(x):
            return super()._conv_forward(x, weight, bias)
        return _ConvFloatWeightGrad.apply(x, weight, bias, list(self.stride), list(self.padding), list(self.dilation),
                                          False, [0, 0], self.groups)


class ConvTranspose2d(nn.ConvTranspose2d):
    """nn.ConvTranspose2d; under CPU bf16 autocast, float32 weight gradients (see _ConvFloatWeightGrad)."""

    def forward(self, x, output_size=None):
        if not _cpu_bf16_autocast(x):
            return super().forward(x, output_size)
        output_padding = self._output_padding(x, output_size, list(self.stride), list(self.padding),
                                              list(self.kernel_size), 2, list(self.dilation))
        return _ConvFloatWeightGrad.apply(x, self.weight, self.bias, list(self.stride), list(self.padding),
                                          list(self.dilation), True, list(output_padding), self.groups)


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
