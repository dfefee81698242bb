from collections import Counter

import pytest
import torch

from sagan.config import ModelConfig, preset, validate
from sagan.errors import ConfigError
from sagan.models import attention_layers, build_discriminator, build_generator, layers


def shapes(net: torch.nn.Module) -> Counter:
    return Counter(tuple(p.shape) for p in net.parameters())


def n_params(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def reference_attention(c: int) -> list[tuple]:
    return [(c // 8, c, 1, 1), (c // 8,), (c // 8, c, 1, 1), (c // 8,), (c, c, 1, 1), (c,), (1,)]


# The popular PyTorch SAGAN at 64x64 (z_dim 128, conv_dim 64): every parameter shape of its G and D.
REFERENCE_G = (
    [(128, 512, 4, 4), (512,), (512,), (512,)]  # ConvTranspose 1 -> 4, BN
    + [(512, 256, 4, 4), (256,), (256,), (256,)]  # 4 -> 8
    + [(256, 128, 4, 4), (128,), (128,), (128,)]  # 8 -> 16
    + reference_attention(128)
    + [(128, 64, 4, 4), (64,), (64,), (64,)]  # 16 -> 32
    + reference_attention(64)
    + [(64, 3, 4, 4), (3,)]  # 32 -> 64
)
REFERENCE_D = (
    [(64, 3, 4, 4), (64,), (128, 64, 4, 4), (128,), (256, 128, 4, 4), (256,)]
    + reference_attention(256)
    + [(512, 256, 4, 4), (512,)]
    + reference_attention(512)
    + [(1, 512, 4, 4), (1,)]
)


def test_dcgan64_has_the_reference_layer_shapes_and_parameter_count():
    cfg = preset("dcgan64")
    G = build_generator(cfg.model, 64, 3)
    D = build_discriminator(cfg.model, 64, 3)
    assert shapes(G) == Counter(REFERENCE_G)
    assert shapes(D) == Counter(REFERENCE_D)
    assert n_params(G) == 3_832_885
    assert n_params(D) == 3_175_299
    assert list(G.blocks) == ["block4", "block8", "block16", "attn16", "block32", "attn32"]
    assert list(D.blocks) == ["block32", "block16", "block8", "attn8", "block4", "attn4"]


def test_resnet128_has_the_paper_widths():
    cfg = preset("celeba128")
    G = build_generator(cfg.model, 128, 3)
    D = build_discriminator(cfg.model, 128, 3)
    assert G.linear.weight.shape == (4 * 4 * 1024, 128)
    g_out = {name: block.conv2.weight.shape[0] for name, block in G.blocks.items() if name.startswith("block")}
    assert g_out == {"block8": 1024, "block16": 512, "block32": 256, "block64": 128, "block128": 64}
    d_out = {name: block.conv2.weight.shape[0] for name, block in D.blocks.items() if name.startswith("block")}
    assert d_out == {"block64": 64, "block32": 128, "block16": 256, "block8": 512, "block4": 1024, "block4b": 1024}
    assert list(attention_layers(G)) == ["blocks.attn32"] and list(attention_layers(D)) == ["blocks.attn32"]
    # The paper form: h to C/8 channels and W_v back to C
    assert attention_layers(G)["blocks.attn32"].value.weight.shape[0] == 256 // 8
    assert attention_layers(D)["blocks.attn32"].out.weight.shape[:2] == (128, 128 // 8)


@pytest.mark.parametrize("arch", ["dcgan", "resnet", "mobilenet"])
@pytest.mark.parametrize("resolution", [32, 64, 128])
@pytest.mark.parametrize("form,num_classes", [("paper", 0), ("official", 5)])
def test_every_backbone_runs_forward_and_backward(arch, resolution, form, num_classes):
    cfg = ModelConfig(arch=arch, z_dim=16, g_channels=8, d_channels=8, g_attention=[16], d_attention=[8],
                      attention=form, num_classes=num_classes)
    G = build_generator(cfg, resolution, 3)
    D = build_discriminator(cfg, resolution, 3)
    z = torch.randn(2, 16)
    y = torch.tensor([0, 4]) if num_classes else None
    x = G(z, y)
    assert x.shape == (2, 3, resolution, resolution)
    assert x.min() >= -1 and x.max() <= 1
    out = D(x, y)
    assert out.shape == (2,)
    out.sum().backward()
    assert all(p.grad is not None for p in G.parameters() if p.requires_grad and p.shape != (1,))
    assert len(attention_layers(G)) == 1 and len(attention_layers(D)) == 1


def test_conditional_discriminator_uses_the_label():
    cfg = ModelConfig(arch="resnet", g_channels=8, d_channels=8, g_attention=[], d_attention=[], num_classes=3)
    D = build_discriminator(cfg, 32, 3).eval()
    x = torch.randn(1, 3, 32, 32)
    assert D(x, torch.tensor([0])).item() != D(x, torch.tensor([2])).item()


def test_grayscale_and_xavier_init_and_no_spectral_norm():
    cfg = ModelConfig(arch="dcgan", g_channels=8, d_channels=8, g_attention=[], d_attention=[], init="xavier",
                      g_spectral_norm=False, d_spectral_norm=False)
    G = build_generator(cfg, 32, 1)
    assert G(torch.randn(2, 128)).shape == (2, 1, 32, 32)
    assert not any("parametrizations" in name for name, _ in G.named_parameters())


def test_spectral_norm_bounds_the_layer_norm():
    cfg = ModelConfig(arch="resnet", g_channels=8, d_channels=8, g_attention=[], d_attention=[])
    D = build_discriminator(cfg, 32, 3)
    D(torch.randn(4, 3, 32, 32))  # a power iteration in training mode
    weight = D.linear.weight  # the normalised weight of the spectrally normalised layer
    assert torch.linalg.matrix_norm(weight, ord=2).item() == pytest.approx(1.0, rel=1e-2)


@pytest.mark.parametrize("make", [lambda f: f.conv(8, 16, 3), lambda f: f.conv_transpose(16, 8, 4, 2, 1),
                                  lambda f: f.linear(8, 5)], ids=["conv", "conv-transpose", "linear"])
def test_spectral_norm_is_torchs_and_stays_float32_under_autocast(make):
    torch.manual_seed(0)
    ours = make(layers.LayerFactory())
    plain = make(layers.LayerFactory(spectral_norm=False))
    torchs = torch.nn.utils.parametrizations.spectral_norm(plain)  # picks dim=1 for the transposed conv itself
    torchs.load_state_dict(ours.state_dict())  # same keys: checkpoints load either way
    for _ in range(3):  # power iterations in training mode
        assert torch.equal(ours.weight, torchs.weight)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        weight = ours.weight
    assert weight.dtype == torch.float32
    torch.testing.assert_close(weight, torchs.weight)  # the same sigma estimate, in float32


@pytest.mark.parametrize("arch,net,res,message", [
    ("dcgan", "g", [64], r"model.g_attention: \[64\] not a feature resolution of this dcgan generator"),
    ("dcgan", "d", [2], r"model.d_attention: \[2\].*choose from \[4, 8, 16, 32\]"),
    ("resnet", "g", [4], r"model.g_attention: \[4\].*choose from \[8, 16, 32, 64\]"),
])
def test_attention_at_a_missing_resolution_is_a_config_error(arch, net, res, message):
    cfg = ModelConfig(arch=arch, g_attention=res if net == "g" else [], d_attention=res if net == "d" else [])
    with pytest.raises(ConfigError, match=message):
        (build_generator if net == "g" else build_discriminator)(cfg, 64, 3)


def test_sample_is_seeded_uint8_nhwc_and_respects_labels():
    cfg = ModelConfig(arch="dcgan", z_dim=16, g_channels=8, g_attention=[], num_classes=4)
    G = build_generator(cfg, 32, 3).eval()
    with torch.no_grad():
        for name, p in G.named_parameters():
            if ".norm." in name:  # class-conditional gains and biases start equal for every class
                p.normal_()
    a = G.sample(5, seed=3, labels=2, batch_size=2)
    assert a.shape == (5, 32, 32, 3) and a.dtype.name == "uint8"
    assert (a == G.sample(5, seed=3, labels=[2] * 5)).all()
    assert not (a == G.sample(5, seed=3, labels=1)).all()
    with pytest.raises(ConfigError, match="0..3"):
        G.sample(2, labels=7)


def test_mobilenet_nets_are_the_resnet_frame_with_inverted_residuals():
    resnet = ModelConfig(arch="resnet", g_channels=16, d_channels=16, g_attention=[16], d_attention=[8])
    mobile = ModelConfig(arch="mobilenet", g_channels=16, d_channels=16, g_attention=[16], d_attention=[8],
                         expansion=4)
    G, D = build_generator(mobile, 32, 3), build_discriminator(mobile, 32, 3)
    assert list(G.blocks) == list(build_generator(resnet, 32, 3).blocks)  # the same blocks and attention
    assert list(D.blocks) == list(build_discriminator(resnet, 32, 3).blocks)

    def conv(i, o, k=1, groups=1):
        return i * o * k * k // groups + o

    # G block16 at width 16: 64 -> 32 channels, expanded to 256; three BNs with affine weight and bias.
    i, o, w = 64, 32, 256
    g_block = G.blocks["block16"]
    assert g_block.depthwise.groups == w
    assert n_params(g_block) == conv(i, w) + conv(w, w, 3, w) + conv(w, o) + conv(i, o) + 2 * (i + w + w)
    # D block8: 16 -> 32 channels, expanded to 64, with a 1x1 shortcut.
    i, o, w = 16, 32, 64
    assert n_params(D.blocks["block8"]) == conv(i, w) + conv(w, w, 3, w) + conv(w, o) + conv(i, o)
    x = G(torch.randn(2, 128))
    assert x.shape == (2, 3, 32, 32) and D(x).shape == (2,)


@pytest.mark.parametrize("overrides,message", [
    ({"expansion": 4}, "model.expansion: '4' applies only with model.arch=mobilenet"),
    ({"arch": "mobilenet", "g_deformable": [16]}, "model.g_deformable: \\[16\\] .* choose from none"),
])
def test_mobilenet_options_are_checked_with_the_config(overrides, message):
    cfg = preset("paper")
    cfg.data.resolution = 32
    cfg.model.g_attention = cfg.model.d_attention = []
    for key, value in overrides.items():
        setattr(cfg.model, key, value)
    with pytest.raises(ConfigError, match=message):
        validate(cfg, scope="synthetic")
