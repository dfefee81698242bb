"""Convolutions that, on the CPU, for small maps and large kernels, run their transposed convolutions and weight
gradients as matmuls.

oneDNN works through a convolution position by position; when the map on its smaller side has few positions and
many channels (D's last 4x4 convolutions, G's first transposed ones), that leaves its units idle. A convolution's
own forward pass stays oneDNN's.
"""

import torch
import torch.nn.functional as F


class SmallMapConv2d:
    """Mixed into nn.Conv2d by `sagan.kernels.install`."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out_positions = [(n + 2 * p - k) // s + 1 for n, p, k, s in zip(
            x.shape[2:], self.padding, self.kernel_size, self.stride)]
        if not _small_map(self, x, out_positions[0] * out_positions[1]):
            return super().forward(x)
        return SmallMapConv.apply(x, self.weight, self.bias, self.stride, self.padding, False)


class SmallMapConvTranspose2d:
    """Mixed into nn.ConvTranspose2d by `sagan.kernels.install`."""

    def forward(self, x: torch.Tensor, output_size: list[int] | None = None) -> torch.Tensor:
        if output_size is not None or not _small_map(self, x, x.shape[2] * x.shape[3]):
            return super().forward(x, output_size)
        return SmallMapConv.apply(x, self.weight, self.bias, self.stride, self.padding, True)


def _small_map(conv, x: torch.Tensor, positions: int) -> bool:
    """Whether `SmallMapConv` runs this convolution: on the CPU, when the map on its smaller side is small and the
    kernel large (`Thresholds.conv_max_positions`, `conv_min_weights`)."""
    t = conv.kernel_thresholds
    plain = (conv.groups == 1 and conv.dilation == (1, 1) and conv.padding_mode == "zeros"
             and not isinstance(conv.padding, str) and not any(getattr(conv, "output_padding", ())))
    weights = conv.in_channels * conv.out_channels * conv.kernel_size[0] * conv.kernel_size[1]
    return (plain and positions <= t.conv_max_positions and weights >= t.conv_min_weights
            and x.device.type == "cpu" and not torch.compiler.is_compiling())
class SmallMapConv(torch.autograd.Function):
    """F.conv2d / F.conv_transpose2d (zero padding, no dilation or groups) for small maps: transposed convolutions
    (a transposed convolution's forward pass, a convolution's input gradient) and weight gradients as matmuls."""

    @staticmethod
    def forward(ctx, x, weight, bias, stride, padding, transposed):
        # As autocast would do for the convolution, which it cannot see inside this function.
        ctx.dtype = torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        x_c, w_c, b_c = _cast(ctx.dtype, x, weight, bias)
        ctx.save_for_backward(x, weight, bias, x_c, w_c)
        ctx.conf = stride, padding, transposed
        with torch.autocast("cpu", enabled=False):
            if transposed:
                size = [(n - 1) * s - 2 * p + k for n, s, p, k in zip(x.shape[2:], stride, padding, weight.shape[2:])]
                return _transposed(x_c, w_c, b_c, stride, padding, size, _memory_format(x, weight))
            return F.conv2d(x_c, w_c, b_c, stride, padding)

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
            # A convolution and the transposed one are each other's input gradient.
            grad_x = (F.conv2d(grad, w_c, None, stride, padding) if transposed
                      else _transposed(grad, w_c, None, stride, padding, x.shape[2:], _memory_format(x, weight)))
        # Not oneDNN's: it computes the bias gradient with the weight gradient, at the weight gradient's cost.
        grad_b = grad.sum((0, 2, 3)) if need[2] else None
        if need[1]:
            # A convolution's weight pairs output gradients with input patches; a transposed one's, inputs with
            # patches of the output gradient (it is the convolution from its output map to its input map).
            small, big = (x_c, grad) if transposed else (grad, x_c)
            grad_w = (_rows(small).t() @ _patches(big, weight.shape[2:], stride, padding)).view(
                small.shape[1], *weight.shape[2:], big.shape[1]).permute(0, 3, 1, 2)
        return grad_x, grad_w, grad_b, None, None, None


def _cast(dtype, *tensors):
    return [t if t is None or dtype is None else t.to(dtype) for t in tensors]


def _conv(x, weight, bias, stride, padding, transposed):
    return (F.conv_transpose2d if transposed else F.conv2d)(x, weight, bias, stride, padding)


def _memory_format(*tensors: torch.Tensor) -> torch.memory_format:
    """oneDNN's choice for a convolution's output: channels_last when an operand is laid out that way."""
    nhwc = any(t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous() for t in tensors)
    return torch.channels_last if nhwc else torch.contiguous_format


def _rows(x: torch.Tensor) -> torch.Tensor:
    """(B * positions, C): the map's channel vectors, one row per position."""
    return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])


def _transposed(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, stride, padding, size,
                memory_format: torch.memory_format) -> torch.Tensor:
    """F.conv_transpose2d(x, weight (in, out, kh, kw), bias) cropped to `size`: each input position's products with
    the whole kernel in one matmul, then added where the kernel lands in float32 (or float64)."""
    b, _, h, w = x.shape
    _, c, kh, kw = weight.shape
    (sh, sw), (ph, pw) = stride, padding
    products = (_rows(x) @ weight.permute(0, 2, 3, 1).reshape(weight.shape[0], -1)).view(b, h, w, kh, kw, c)
    out = x.new_zeros(b, max((h - 1) * sh + kh, size[0] + 2 * ph), max((w - 1) * sw + kw, size[1] + 2 * pw), c,
                      dtype=torch.promote_types(x.dtype, torch.float32))
    if bias is not None:
        out += bias
    for i in range(kh):
        for j in range(kw):
            # add_ on the view: `out[...] += ...` would also copy the view onto itself (__setitem__).
            out[:, i:i + sh * (h - 1) + 1:sh, j:j + sw * (w - 1) + 1:sw].add_(products[:, :, :, i, j])
    out = out[:, ph:ph + size[0], pw:pw + size[1]].permute(0, 3, 1, 2).to(x.dtype)
    return out.contiguous(memory_format=memory_format)


def _patches(x: torch.Tensor, kernel, stride, padding) -> torch.Tensor:
    """(B * positions, kh * kw * C) rows: the zero-padded input under each kernel position, channels last."""
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    x = F.pad(x, (pw, pw, ph, ph)).permute(0, 2, 3, 1)
    b, h, w, c = x.shape
    rows, cols = (h - kh) // sh + 1, (w - kw) // sw + 1
    s_b, s_h, s_w, s_c = x.stride()
    windows = x.as_strided((b, rows, cols, kh, kw, c), (s_b, sh * s_h, sw * s_w, s_h, s_w, s_c))
    return windows.reshape(b * rows * cols, kh * kw * c)
