"""The baseline presets (dcgan, wgan-gp, sngan): their papers' layers, init and parameter counts, and their training."""

import copy
import itertools

import pytest
import torch
from torch import nn

import sagan
from sagan.models import build_discriminator, build_generator
from sagan.training.gan import GANTraining


def n_params(net: nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def nets(preset: str, resolution: int | None = None):
    cfg = sagan.preset(preset)
    res = resolution or cfg.data.resolution
    return build_generator(cfg.model, res, 3), build_discriminator(cfg.model, res, 3)


def modules(net: nn.Module, kind: type) -> list[nn.Module]:
    return [m for m in net.modules() if isinstance(m, kind)]


def spectrally_normalised(net: nn.Module) -> bool:
    return any("parametrizations" in name for name, _ in net.named_parameters())


def conv(c_in: int, c_out: int, k: int, bias: bool = True) -> int:
    return c_in * c_out * k * k + (c_out if bias else 0)


def test_dcgan_has_figure_1s_layers_and_parameter_count():
    G, D = nets("dcgan")
    # Radford et al., figure 1 (64x64, z of 100): project z to 4x4x1024, then 5x5 stride-2 transposed convs to
    # 512, 256, 128 and 3 channels; BN after every layer but the output (a bias before BN is redundant).
    widths = [1024, 512, 256, 128]
    g = 100 * 1024 * 16 + sum(2 * w for w in widths)
    g += sum(conv(a, b, 5, bias=False) for a, b in itertools.pairwise(widths)) + conv(128, 3, 5)
    # D mirrors it: 5x5 stride-2 convs 3 -> 128 -> 256 -> 512 -> 1024, BN but on the first, then 4x4x1024 -> 1.
    d = conv(3, 128, 5) + sum(conv(a, b, 5, bias=False) + 2 * b for a, b in itertools.pairwise(widths[::-1]))
    d += conv(1024, 1, 4)
    assert (n_params(G), n_params(D)) == (g, d)
    assert [m.out_channels for m in modules(G, nn.ConvTranspose2d)] == widths + [3]
    assert len(modules(G, nn.BatchNorm2d)) == 4 and len(modules(D, nn.BatchNorm2d)) == 3
    assert {m.kernel_size for m in modules(D, nn.Conv2d)} == {(5, 5), (4, 4)}
    assert not spectrally_normalised(G) and not spectrally_normalised(D)
    assert {block.slope for block in D.blocks.values()} == {0.2}
    weights = torch.cat([m.weight.detach().flatten() for m in modules(D, nn.Conv2d)])
    assert weights.mean().abs() < 1e-3 and weights.std().item() == pytest.approx(0.02, rel=0.02)  # N(0, 0.02)
    images = G(torch.randn(2, 100))
    assert images.shape == (2, 3, 64, 64) and D(images).shape == (2,)


def resnet_cifar_counts(g_width: int, d_width: int) -> tuple[int, int]:
    """Parameters of the WGAN-GP / SNGAN CIFAR-10 ResNets from their layer lists (z of 128)."""
    w = g_width
    up_block = 2 * w + conv(w, w, 3) + 2 * w + conv(w, w, 3) + conv(w, w, 1)  # BN conv BN conv + 1x1 shortcut
    g = 128 * 16 * w + 16 * w + 3 * up_block + 2 * w + conv(w, 3, 3)
    w = d_width
    d = conv(3, w, 3) + conv(w, w, 3) + conv(3, w, 1)  # optimized block 32 -> 16
    d += 2 * conv(w, w, 3) + conv(w, w, 1)  # down block 16 -> 8
    d += 2 * 2 * conv(w, w, 3)  # two blocks at 8x8, identity shortcuts
    return g, d + w + 1


@pytest.mark.parametrize("preset,widths,pool", [("wgan-gp", (128, 128), "mean"), ("sngan", (256, 128), "sum")])
def test_cifar_resnets_have_their_papers_layers_and_parameter_counts(preset, widths, pool):
    G, D = nets(preset)
    assert (n_params(G), n_params(D)) == resnet_cifar_counts(*widths)
    assert list(D.blocks) == ["block16", "block8", "block8b", "block8c"]
    assert not modules(D, nn.BatchNorm2d) and len(modules(G, nn.BatchNorm2d)) == 7
    assert not spectrally_normalised(G)
    assert spectrally_normalised(D) == (preset == "sngan")
    # The pooling before D's linear layer: global mean (WGAN-GP's code) or sum (SNGAN's).
    x = torch.randn(2, 3, 32, 32)
    h = torch.relu(D.run_blocks(x, None))
    h = h.mean(dim=(2, 3)) if pool == "mean" else h.sum(dim=(2, 3))
    D.eval()
    torch.testing.assert_close(D(x), D.linear(h).flatten())


def test_baselines_scale_to_other_resolutions():
    for preset in ("dcgan", "wgan-gp", "sngan"):
        for resolution in (32, 64):
            G, D = nets(preset, resolution)
            z = torch.randn(2, G.z_dim)
            assert D(G(z)).shape == (2,)


def test_batch_norm_in_d_normalises_real_and_fake_batches_apart():
    cfg = sagan.resolve_config("dcgan", sets=["data.resolution=32", "train.batch_size=8"])
    gan = GANTraining(cfg, torch.device("cpu"), batches_per_epoch=10)
    real = torch.rand(8, 3, 32, 32) * 2 - 1
    D_before = copy.deepcopy(gan.D)
    stats = gan.d_step(real, None)
    torch.testing.assert_close(stats["d_real"], D_before(real).mean())


@pytest.mark.parametrize("preset", ["dcgan", "wgan-gp", "sngan"])
def test_each_baseline_trains(preset, tmp_path):
    cfg = sagan.resolve_config(preset, flags={"train.steps": 2, "data.resolution": 32, "train.batch_size": 8},
                               sets=["model.g_channels=16", "model.d_channels=16", "train.report=false"])
    result = sagan.train(cfg, tmp_path / preset, progress=False)
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.record.values()
                                    if isinstance(v, float))
