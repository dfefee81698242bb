"""Deformable convolution: a plain convolution at the start, sampling at its offsets scaled by its modulations,
gradients checked in float64, and its place in the ResNet blocks (`model.g_deformable`, `model.d_deformable`)."""

import math

import pytest
import torch
import torch.nn.functional as F
from conftest import tiny_config

from sagan.config import ConfigError
from sagan.models import build_discriminator, build_generator
from sagan.models.deformable import DeformConv2d
from sagan.training.gan import GANTraining


def test_a_fresh_layer_is_the_plain_convolution():
    torch.manual_seed(0)
    layer = DeformConv2d(6, 5, 3)
    x = torch.randn(2, 6, 7, 9)
    torch.testing.assert_close(layer(x), F.conv2d(x, layer.weight, layer.bias, padding=1), atol=1e-5, rtol=1e-5)


def test_offsets_move_the_taps_and_modulations_scale_them():
    torch.manual_seed(0)
    layer = DeformConv2d(4, 3, 3, bias=False)
    x = torch.randn(1, 4, 6, 6)
    plain = F.conv2d(x, layer.weight, padding=1)
    with torch.no_grad():
        layer.offsets.bias[1:18:2] = 1.0  # every tap's dx: one column right
        shifted = layer(x)
        torch.testing.assert_close(shifted[..., :-1], plain[..., 1:], atol=1e-5, rtol=1e-5)
        layer.offsets.bias[:18] = 0
        layer.offsets.bias[18:] = math.log(1 / 3)  # 2 sigmoid = 0.5
        torch.testing.assert_close(layer(x), plain / 2, atol=1e-5, rtol=1e-5)


def test_gradients_and_double_backward_in_float64():
    torch.manual_seed(0)
    layer = DeformConv2d(2, 2, 3).double()
    with torch.no_grad():  # off the whole positions, where bilinear sampling has kinks
        layer.offsets.weight.normal_(0, 0.3)
        layer.offsets.bias.uniform_(-0.4, 0.4)
    names, params = zip(*layer.named_parameters())

    def f(x, *weights):
        return torch.func.functional_call(layer, dict(zip(names, weights)), (x,))

    inputs = (torch.randn(1, 2, 4, 4, dtype=torch.float64, requires_grad=True),
              *(p.detach().clone().requires_grad_() for p in params))
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs, fast_mode=True)


def test_deformable_blocks_of_the_resnet_nets_and_their_parameters():
    plain = tiny_config(**{"model.arch": "resnet"})
    deformable = tiny_config(**{"model.arch": "resnet", "model.g_deformable": [16], "model.d_deformable": [8, 4]})
    count = {}
    for name, cfg in (("plain", plain), ("deformable", deformable)):
        G, D = build_generator(cfg.model, 32, 3), build_discriminator(cfg.model, 32, 3)
        count[name] = [sum(p.numel() for p in net.parameters()) for net in (G, D)]
        layers = [[n for n, m in net.named_modules() if isinstance(m, DeformConv2d)] for net in (G, D)]
    assert layers == [["blocks.block16.conv1", "blocks.block16.conv2"],
                      ["blocks.block8.conv1", "blocks.block8.conv2", "blocks.block4.conv1", "blocks.block4.conv2",
                       "blocks.block4b.conv1", "blocks.block4b.conv2"]]

    def offsets(c):  # a 3x3 conv from c channels to 27 (18 offsets, 9 modulations), with bias
        return c * 27 * 9 + 27

    # At 32x32, width 16: G block16 64 -> 32 channels; D block8 16 -> 32, block4 32 -> 64, block4b 64 -> 64.
    assert count["deformable"][0] - count["plain"][0] == offsets(64) + offsets(32)
    assert count["deformable"][1] - count["plain"][1] == (offsets(16) + offsets(32)) + (offsets(32) + offsets(64)) \
        + 2 * offsets(64)
    gan = GANTraining(deformable, torch.device("cpu"), batches_per_epoch=1)
    before = {n: p.clone() for n, p in gan.D.named_parameters()}
    stats = gan.d_step(*gan.prepare(torch.randint(0, 256, (8, 3, 32, 32), dtype=torch.uint8), None))
    assert math.isfinite(stats["d_loss"])
    assert not torch.equal(before["blocks.block8.conv1.offsets.weight"], dict(gan.D.named_parameters())[
        "blocks.block8.conv1.offsets.weight"])


@pytest.mark.parametrize("overrides,message", [
    ({"model.g_deformable": [16]},
     r"model.g_deformable: \[16\] not a feature resolution of the dcgan generator at 32x32; choose from none"),
    ({"model.arch": "resnet", "model.d_deformable": [32]},
     r"model.d_deformable: \[32\] not a feature resolution of the resnet discriminator at 32x32; choose from \[4, 8"),
])
def test_deformable_placement_is_checked_with_the_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)  # set and validated
