"""The small-map convolution kernels compute what torch's own convolutions do, to first and second order."""

import copy
import dataclasses

import pytest
import torch
from torch import nn

from sagan import kernels
from sagan.kernels.conv import SmallMapConv
from sagan.models.layers import LayerFactory

# The small-map path for maps up to 4x4 and kernels of any size (by default only kernels of many weights take it).
ANY_KERNEL = kernels.Thresholds(conv_max_positions=16, conv_min_weights=0)
SMALL_MAP = "SmallMapConvBackward"

# (torch's layer, constructor arguments, input shape): D's last convolutions, G's first transposed ones, a 1x1
# attention projection, and odd kernels, strides, paddings and sizes.
CASES = [
    (nn.Conv2d, (32, 48, 4, 2, 1), (5, 32, 8, 8)),
    (nn.Conv2d, (48, 1, 4, 1, 0), (5, 48, 4, 4)),
    (nn.Conv2d, (16, 8, 1), (5, 16, 4, 4)),
    (nn.Conv2d, (16, 8, (3, 2), (2, 1), (1, 0)), (3, 16, 3, 5)),
    (nn.Conv2d, (16, 8, 4, 2, 1), (3, 16, 7, 7)),  # the last padded row and column never reached
    (nn.ConvTranspose2d, (24, 40, 4, 1, 0), (5, 24, 1, 1)),
    (nn.ConvTranspose2d, (40, 24, 4, 2, 1), (5, 40, 4, 4)),
    (nn.ConvTranspose2d, (16, 8, 3, 2, 1), (3, 16, 3, 5)),
]


def pair(layer, args, memory_format):
    """(the layer with the kernel installed, the same layer as torch has it)."""
    torch.manual_seed(0)
    plain = layer(*args).to(memory_format=memory_format)
    return kernels.install(copy.deepcopy(plain), ANY_KERNEL), plain


@pytest.mark.parametrize("layer, args, shape", CASES)
@pytest.mark.parametrize("memory_format", [torch.contiguous_format, torch.channels_last], ids=["nchw", "nhwc"])
@pytest.mark.parametrize("amp", [False, True], ids=["fp32", "bf16"])
def test_outputs_and_gradients_match_torch(layer, args, shape, memory_format, amp):
    a, b = pair(layer, args, memory_format)
    x = torch.randn(shape).contiguous(memory_format=memory_format)
    xa, xb = x.clone().requires_grad_(), x.clone().requires_grad_()
    with torch.autocast("cpu", enabled=amp):
        ya, yb = a(xa), b(xb)
        with torch.no_grad():
            y_eval = a(x)
    assert type(ya.grad_fn).__name__ == SMALL_MAP and isinstance(a, layer)
    assert ya.dtype == yb.dtype == y_eval.dtype == (torch.bfloat16 if amp else torch.float32)
    assert ya.is_contiguous(memory_format=memory_format)
    g = torch.randn(ya.shape)
    (ya.float() * g).sum().backward()
    (yb.float() * g).sum().backward()
    for got, want in ((ya, yb), (y_eval, yb), (xa.grad, xb.grad), (a.weight.grad, b.weight.grad),
                      (a.bias.grad, b.bias.grad)):
        assert got.dtype == want.dtype
        # bfloat16: products summed in another order, a few bfloat16 roundings apart.
        scale = want.detach().abs().max().item()
        tol = {"rtol": 2e-2, "atol": 2e-2 * scale} if amp else {"rtol": 1e-5, "atol": 1e-6 * scale}
        torch.testing.assert_close(got.detach(), want.detach(), **tol)


@pytest.mark.parametrize("layer, args, shape", [
    (nn.Conv2d, (3, 4, 4, 2, 1), (2, 3, 6, 6)),
    (nn.Conv2d, (3, 4, (3, 2), (2, 1), (1, 0)), (2, 3, 3, 5)),
    (nn.ConvTranspose2d, (3, 4, 4, 2, 1), (2, 3, 3, 3)),
    (nn.ConvTranspose2d, (3, 2, 3, 2, 1), (2, 3, 2, 3)),
])
def test_second_derivatives(layer, args, shape):
    # WGAN-GP and R1 differentiate D's input gradient again, down to its weights. Small: gradgradcheck's Jacobians
    # are (inputs x outputs) squared.
    torch.manual_seed(0)
    layer = layer(*args).double()
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)

    def f(x, weight, bias):
        return SmallMapConv.apply(x, weight, bias, layer.stride, layer.padding, layer.transposed)

    inputs = (x, layer.weight.detach().requires_grad_(), layer.bias.detach().requires_grad_())
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, (x, inputs[1], inputs[2].detach()))  # an input without a gradient


def test_larger_maps_and_smaller_kernels_take_torchs_path():
    down = kernels.install(nn.Conv2d(8, 8, 4, 2, 1), ANY_KERNEL)
    up = kernels.install(nn.ConvTranspose2d(8, 8, 4, 2, 1), ANY_KERNEL)
    assert type(down(torch.randn(2, 8, 8, 8)).grad_fn).__name__ == SMALL_MAP
    assert type(down(torch.randn(2, 8, 10, 10)).grad_fn).__name__ != SMALL_MAP  # 5x5 positions
    assert type(up(torch.randn(2, 8, 4, 4)).grad_fn).__name__ == SMALL_MAP
    assert type(up(torch.randn(2, 8, 5, 5)).grad_fn).__name__ != SMALL_MAP
    at_least = dataclasses.replace(ANY_KERNEL, conv_min_weights=8 * 8 * 4 * 4 + 1)  # one weight more than these have
    kernels.install(down, at_least)
    kernels.install(up, at_least)
    assert type(down(torch.randn(2, 8, 8, 8)).grad_fn).__name__ != SMALL_MAP
    assert type(up(torch.randn(2, 8, 4, 4)).grad_fn).__name__ != SMALL_MAP


@pytest.mark.parametrize("make", ["conv", "conv_transpose"])
@pytest.mark.parametrize("path", ["matmul", "torch"])
def test_spectral_norm_runs_one_power_iteration_per_forward(make, path):
    torch.manual_seed(0)
    ours = kernels.install(getattr(LayerFactory(spectral_norm=True), make)(8, 8, 4, 2, 1), ANY_KERNEL)
    theirs = nn.utils.parametrizations.spectral_norm(
        (nn.Conv2d if make == "conv" else nn.ConvTranspose2d)(8, 8, 4, 2, 1))
    theirs.load_state_dict(ours.state_dict())
    side = {"conv": {"matmul": 8, "torch": 10}, "conv_transpose": {"matmul": 4, "torch": 5}}[make][path]
    x = torch.randn(2, 8, side, side)
    y = ours(x)
    assert (type(y.grad_fn).__name__ == SMALL_MAP) == (path == "matmul")
    torch.testing.assert_close(y, theirs(x))
    torch.testing.assert_close(ours(x), theirs(x))
    torch.testing.assert_close(ours.parametrizations.weight[0]._u, theirs.parametrizations.weight[0]._u)
