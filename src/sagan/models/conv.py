"""Conv2d and ConvTranspose2d whose weight gradient on the CPU, for small maps, is one matmul over patches.

oneDNN computes a convolution's weight gradient position by position; when the map the kernel slides over has few
positions and many channels (D's last 4x4 convolutions, G's first transposed ones), that leaves its units idle:
at batch 128 in bfloat16 D's 256->512 channel convolution to 4x4 took 40 ms for its weight gradient, a matmul of
the same numbers over unfolded patches 10 ms (float32: 43 and 39 ms). Forward pass, input and bias gradients are
oneDNN's, unchanged.
"""

import torch
import torch.nn.functional as F
from torch import nn

# Above this many positions per image on the smaller side of the convolution, oneDNN's own weight gradient is as
# fast or faster (measured at 8x8: 0.7x-1.4x the matmul's time, by precision).
MAX_MATMUL_POSITIONS = 16


class Conv2d(nn.Conv2d):
    def _conv_forward(self, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> torch.Tensor:
        out_positions = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(
            x.shape[2:], self.padding, self.kernel_size, self.stride)]
        if _matmul_weight_grad(self, x, weight, out_positions[0] * out_positions[1]):
            return _SmallMapConv.apply(x, weight, bias, self.stride, self.padding, False)
        return super()._conv_forward(x, weight, bias)


class ConvTranspose2d(nn.ConvTranspose2d):
    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        weight = self.weight  # read once: under spectral norm each read runs a power iteration
        if output_size is None and _matmul_weight_grad(self, x, weight, x.shape[2] * x.shape[3]):
            return _SmallMapConv.apply(x, weight, self.bias, self.stride, self.padding, True)
        output_padding = self._output_padding(x, output_size, self.stride, self.padding, self.kernel_size, 2,
                                              self.dilation)
        return F.conv_transpose2d(x, weight, self.bias, self.stride, self.padding, output_padding, self.groups,
                                  self.dilation)


def _matmul_weight_grad(conv: nn.Module, x: torch.Tensor, weight: torch.Tensor, small_positions: int) -> bool:
    plain = (conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
             and not isinstance(conv.padding, str) and not any(getattr(conv, "output_padding", ())))
    return (plain and small_positions <= MAX_MATMUL_POSITIONS and x.device.type == "cpu" and weight.requires_grad
            and torch.is_grad_enabled() and not torch.compiler.is_compiling())


class _SmallMapConv(torch.autograd.Function):
    """F.conv2d / F.conv_transpose2d (zero padding, no dilation or groups) with the weight gradient as a matmul."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed):
        # As autocast would do for the convolution, which it cannot see inside this function.
        ctx.dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        x_c, w_c, b_c = _cast(ctx.dtype, x, weight, bias)
        ctx.save_for_backward(x, weight, bias, x_c, w_c)
        ctx.conf = stride, padding, transposed
        with torch.autocast("cpu", enabled=False):
            return _conv(x_c, w_c, b_c, *ctx.conf)

    @staticmethod
    def backward(ctx, grad):
        x, weight, bias, x_c, w_c = ctx.saved_tensors
        stride, padding, transposed = ctx.conf
        need = ctx.needs_input_grad[:3]
        if torch.is_grad_enabled():
            # A double backward (the gradient penalties through D): autograd differentiates the plain convolution.
            inputs = [t for t, n in zip((x, weight, bias), need) if n]
            with torch.autocast("cpu", enabled=False):
                y = _conv(*_cast(ctx.dtype, x, weight, bias), stride, padding, transposed)
            grads = iter(torch.autograd.grad(y, inputs, grad, create_graph=True))
            return *(next(grads) if n else None for n in need), None, None, None
        grad_x = grad_w = None
        if need[0]:
            grad_x = torch.ops.aten.convolution_backward(
                grad, x_c, w_c, None, stride, padding, [1, 1], transposed, [0, 0], 1, [True, False, False])[0]
        # Not oneDNN's: it computes the bias gradient with the weight gradient, at the weight gradient's cost.
        grad_b = grad.sum((0, 2, 3)) if need[2] else None
        if need[1]:
            # A convolution's weight pairs output gradients with input patches; a transposed one's, inputs with
            # patches of the output gradient (it is the convolution from its output map to its input map).
            small, big = (x_c, grad) if transposed else (grad, x_c)
            rows = small.permute(0, 2, 3, 1).reshape(-1, small.shape[1])
            kh, kw = weight.shape[2:]
            grad_w = (rows.t() @ _patches(big, (kh, kw), stride, padding)).view(small.shape[1], kh, kw, big.shape[1])
            grad_w = grad_w.permute(0, 3, 1, 2)
        return grad_x, grad_w, grad_b, None, None, None


def _cast(dtype, *tensors):
    return [t if t is None or dtype is None else t.to(dtype) for t in tensors]


def _conv(x, weight, bias, stride, padding, transposed):
    return (F.conv_transpose2d if transposed else F.conv2d)(x, weight, bias, stride, padding)


def _patches(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """(B * positions, kh * kw * C) rows: the zero-padded input under each kernel position, channels last."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    x = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)
    b, h, w, c = x.shape
    rows, cols = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_b, s_h, s_w, s_c = x.stride()
    windows = x.as_strided((b, rows, cols, kh, kw, c), (s_b, sh * s_h, sw * s_w, s_h, s_w, s_c))
    return windows.reshape(b * rows * cols, kh * kw * c)
