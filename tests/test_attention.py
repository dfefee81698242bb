"""The attention blocks: each form against its formula, and what every form shares (identity at the start, maps,
double backward, memory linear in the positions, positional encodings, errors)."""

import json
import math
import re

import pytest
import torch
import torch.nn.functional as F
from conftest import straight_and_resumed, tiny_config

from sagan import kernels
from sagan.config import ConfigError
from sagan.models import ATTENTION, AttentionOptions, SelfAttention
from sagan.models.attention import DeformableAttention, LocalAttention, build
from sagan.models.attention.position import sincos_table
from sagan.viz.report import write_report


def paper_formula(block: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """Section 3 of the paper, in its own notation: s_ij = f(x_i)^T g(x_j), beta_ji = softmax_i(s_ij),
    o_j = v(sum_i beta_ji h(x_i)) with h to C/8 channels and v back to C, y = gamma * o + x."""
    b, c, h, w = x.shape
    f = block.key(x).flatten(2)
    g = block.query(x).flatten(2)
    hx = block.value(x).flatten(2)
    assert hx.shape[1] == c // 8 and block.query.bias is None
    s = torch.einsum("bki,bkj->bij", f, g)
    beta = torch.softmax(s, dim=1)
    o = torch.einsum("bci,bij->bcj", hx, beta)
    return block.gamma * block.out(o.view(b, c // 8, h, w)) + x


def popular_formula(block: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """The popular PyTorch block (the first arXiv version): h keeps C channels, biases, no output conv."""
    b, c, h, w = x.shape
    f, g, hx = block.key(x).flatten(2), block.query(x).flatten(2), block.value(x).flatten(2)
    assert block.out is None and block.query.bias is not None
    beta = torch.softmax(torch.einsum("bki,bkj->bij", f, g), dim=1)
    return block.gamma * torch.einsum("bci,bij->bcj", hx, beta).view(b, c, h, w) + x


def official_formula(block: SelfAttention, x: torch.Tensor) -> torch.Tensor:
    """sn_non_local_block_sim of the released TF code: theta, max-pooled phi and g, softmax(theta phi^T) g,
    a 1x1 conv back to C channels, x + sigma * attn_g."""
    b, c, h, w = x.shape
    theta = block.query(x).flatten(2).transpose(1, 2)
    phi = F.max_pool2d(block.key(x), 2).flatten(2).transpose(1, 2)
    g = F.max_pool2d(block.value(x), 2).flatten(2).transpose(1, 2)
    attn = torch.softmax(theta @ phi.transpose(1, 2), dim=-1)
    attn_g = (attn @ g).transpose(1, 2).reshape(b, c // 2, h, w)
    return x + block.gamma * block.out(attn_g)


@pytest.mark.parametrize("form,formula", [("paper", paper_formula), ("official", official_formula),
                                          ("popular", popular_formula)])
@pytest.mark.parametrize("spectral_norm", [False, True])
@pytest.mark.parametrize("shape", [(2, 32, 8, 8), (3, 64, 4, 6)])
def test_attention_equals_formula(form, formula, spectral_norm, shape):
    torch.manual_seed(0)
    block = SelfAttention(shape[1], form, spectral_norm=spectral_norm).eval()
    with torch.no_grad():
        block.gamma.fill_(0.7)
    x = torch.randn(shape)
    with torch.no_grad():
        torch.testing.assert_close(block(x), formula(block, x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("form,parameters", [
    ("paper", 3 * 64 * 8 + 8 * 64 + 1),  # f, g, h: C -> C/8; W_v: C/8 -> C; gamma
    ("official", 2 * 64 * 8 + 64 * 32 + 32 * 64 + 1),  # h: C -> C/2 and back
    ("popular", 2 * (64 * 8 + 8) + 64 * 64 + 64 + 1),  # h: C -> C, with biases
])
def test_parameter_counts_of_the_forms(form, parameters):
    assert sum(p.numel() for p in SelfAttention(64, form).parameters()) == parameters


@pytest.mark.parametrize("form", ["paper", "official", "popular"])
def test_fresh_block_is_identity_and_gamma_learns(form):
    block = SelfAttention(16, form)
    x = torch.randn(2, 16, 8, 8)
    assert block.gamma.item() == 0
    assert torch.equal(block(x), x)
    block(x).square().sum().backward()
    assert block.gamma.grad is not None and block.gamma.grad.abs().item() > 0


@pytest.mark.parametrize("form,keys", [("paper", 64), ("official", 16), ("popular", 64)])
def test_attention_map_shape_and_rows_sum_to_one(form, keys):
    block = SelfAttention(16, form)
    with torch.no_grad():
        block.gamma.fill_(0.5)
    x = torch.randn(2, 16, 8, 8)
    y, attn = block(x, return_attention=True)
    assert attn.shape == (2, 64, keys)
    torch.testing.assert_close(attn.sum(-1), torch.ones(2, 64))
    torch.testing.assert_close(y, block(x))


def test_attention_works_in_channels_last_and_bf16():
    block = SelfAttention(32).to(memory_format=torch.channels_last)
    with torch.no_grad():
        block.gamma.fill_(1.0)
    x = torch.randn(2, 32, 8, 8)
    expected = block(x)
    torch.testing.assert_close(block(x.contiguous(memory_format=torch.channels_last)), expected)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        low = block(x)
    torch.testing.assert_close(low.float(), expected, atol=0.1, rtol=0.05)


def test_rejects_bad_arguments():
    with pytest.raises(ValueError, match="form"):
        SelfAttention(16, "sparse")
    with pytest.raises(ValueError, match="8 channels"):
        SelfAttention(4)
    with pytest.raises(ValueError, match="3 heads do not divide the 4 query"):
        SelfAttention(32, heads=3)
    with pytest.raises(ValueError, match="odd number"):
        LocalAttention(32, window=4)
    with pytest.raises(ValueError, match="square number"):
        DeformableAttention(32, points=8)
    with pytest.raises(ValueError, match="feature resolution"):
        SelfAttention(32, pos="sincos")
    with pytest.raises(ValueError, match="8x8 maps, got 4x4"):
        SelfAttention(32, pos="learned", resolution=8)(torch.randn(1, 32, 4, 4))


def with_gamma(block, value=0.7):
    with torch.no_grad():
        block.gamma.fill_(value)
    return block.eval()


def test_multihead_attends_per_head():
    torch.manual_seed(0)
    block = with_gamma(build(AttentionOptions("multihead", heads=2), 32, 8))
    x = torch.randn(2, 32, 8, 8)
    q, k, v = (conv(x).flatten(2) for conv in (block.query, block.key, block.value))  # (B, 4, N)
    heads = [torch.softmax(q[:, i:i + 2].transpose(1, 2) @ k[:, i:i + 2], -1) @ v[:, i:i + 2].transpose(1, 2)
             for i in (0, 2)]
    o = torch.cat(heads, -1).transpose(1, 2).reshape(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + 0.7 * block.out(o), atol=1e-5, rtol=1e-5)


def test_l2_attention_softmaxes_negative_squared_distances_of_tied_queries_and_keys():
    torch.manual_seed(0)
    block = with_gamma(build(AttentionOptions("l2", heads=2), 32, 8))
    assert block.key is None
    x = torch.randn(2, 32, 8, 8)
    q, v = block.query(x).flatten(2), block.value(x).flatten(2)
    heads = []
    for i in (0, 2):
        qi = q[:, i:i + 2].transpose(1, 2)
        heads.append(torch.softmax(-torch.cdist(qi, qi).square() / math.sqrt(2), -1) @ v[:, i:i + 2].transpose(1, 2))
    o = torch.cat(heads, -1).transpose(1, 2).reshape(2, 4, 8, 8)
    with torch.no_grad():
        torch.testing.assert_close(block(x), x + 0.7 * block.out(o), atol=1e-5, rtol=1e-5)
        kernels.install(block)  # the fused kernel path pads the values to the one extra logit channel
        torch.testing.assert_close(block(x), x + 0.7 * block.out(o), atol=1e-5, rtol=1e-5)


def window_attention(block, x, window, shift=0):
    """softmax(q k^T) over the keys of a window x window neighbourhood of each query, shifted `shift` columns
    right, and the output o it gives (before the output convolution)."""
    b, _, h, w = x.shape
    q, k, v = (conv(x).flatten(2) for conv in (block.query, block.key, block.value))
    rows, cols = torch.arange(h).repeat_interleave(w), torch.arange(w).repeat(h)
    near = (((rows[None] - rows[:, None]).abs() <= window // 2)
            & ((cols[None] - cols[:, None] - shift).abs() <= window // 2))
    attention = torch.softmax((q.transpose(1, 2) @ k).masked_fill(~near, float("-inf")), -1)
    return attention, (attention @ v.transpose(1, 2)).transpose(1, 2).reshape(b, -1, h, w)


def test_local_attention_is_full_attention_masked_to_the_window():
    torch.manual_seed(0)
    block = with_gamma(build(AttentionOptions("local", window=3), 32, 6))
    x = torch.randn(2, 32, 6, 6)
    with torch.no_grad():
        attention, o = window_attention(block, x, 3)
        y, maps = block(x, return_attention=True)
        torch.testing.assert_close(y, x + 0.7 * block.out(o), atol=1e-5, rtol=1e-5)
        torch.testing.assert_close(maps, attention, atol=1e-6, rtol=1e-5)
        # A window as wide as the map is the paper block.
        wide = with_gamma(build(AttentionOptions("local", window=11), 32, 6))
        wide.load_state_dict(block.state_dict())
        paper = with_gamma(SelfAttention(32))
        paper.load_state_dict(block.state_dict())
        torch.testing.assert_close(wide(x), paper(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("shift", [0, 1])
def test_deformable_attention_samples_at_its_offsets(shift):
    """At the start the 9 points are the 3x3 neighbourhood of the query: where they are all inside the map it is
    local attention of window 3; offsets one column more move them one column right."""
    torch.manual_seed(0)
    block = with_gamma(build(AttentionOptions("deformable", points=9), 32, 8))
    with torch.no_grad():
        block.offsets.bias[1::2] += shift
    x = torch.randn(2, 32, 8, 8)
    inside = torch.zeros(8, 8, dtype=torch.bool)
    inside[1:7, 1:7 - shift] = True
    with torch.no_grad():
        attention, o = window_attention(block, x, 3, shift)
        y, maps = block(x, return_attention=True)
        torch.testing.assert_close(maps[:, inside.flatten()], attention[:, inside.flatten()], atol=1e-6, rtol=1e-5)
        torch.testing.assert_close(y[..., inside], (x + 0.7 * block.out(o))[..., inside], atol=1e-5, rtol=1e-5)


FORMS = list(ATTENTION)


def make(form: str, channels: int = 32, resolution: int = 8, pos: str = "none"):
    return build(AttentionOptions(form, heads=2, window=3, points=4, pos=pos), channels, resolution)


@pytest.mark.parametrize("pos", ["none", "sincos", "learned"])
@pytest.mark.parametrize("form", FORMS)
def test_every_form_starts_as_the_identity_and_returns_its_map(form, pos):
    block = make(form, pos=pos)
    x = torch.randn(2, 32, 8, 8)
    assert torch.equal(block(x), x)
    block(x).square().sum().backward()
    assert block.gamma.grad.abs().item() > 0
    with_gamma(block, 0.5)
    y, attention = block(x, return_attention=True)
    keys = 64 // block.key_stride**2
    assert attention.shape == (2, 64, keys) and attention.min() >= 0
    total = attention.sum(-1)
    if form == "deformable":  # sampling points outside the map see zero keys and values
        assert total.max() <= 1 + 1e-5 and torch.allclose(total.view(2, 8, 8)[:, 2:6, 2:6], torch.ones(2, 4, 4))
    else:
        torch.testing.assert_close(total, torch.ones(2, 64))
    torch.testing.assert_close(y, block(x))


@pytest.mark.parametrize("form", FORMS)
def test_every_form_has_double_backward_for_the_gradient_penalties(form):
    # WGAN-GP and R1 differentiate D's input gradient again, down to its weights: all of them in float64.
    block = with_gamma(make(form, 16, 4, pos="learned"), 0.8).double()
    names, params = zip(*block.named_parameters())

    def f(x, *weights):
        return torch.func.functional_call(block, dict(zip(names, weights)), (x,))

    x = torch.randn(1, 16, 4, 4, dtype=torch.float64, requires_grad=True)
    # A non-zero offset weight: at zero, bilinear sampling at whole positions has kinks.
    weights = [p.detach().clone().requires_grad_() for p in params]
    if form == "deformable":
        weights[names.index("offsets.weight")].data.normal_(0, 0.1)
    assert torch.autograd.gradgradcheck(f, (x, *weights), fast_mode=True)


@pytest.mark.parametrize("form", FORMS)
def test_every_form_keeps_memory_linear_in_the_positions_at_a_64x64_map(form):
    """What the backward pass keeps of a block at N = 4096 positions (the fused kernels of `sagan.kernels` for the
    full forms, as training runs them) stays far below one N x N score matrix."""
    block = kernels.install(with_gamma(make(form, 64, 64)))
    saved = {}

    def pack(t):
        saved[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    x = torch.randn(1, 64, 64, 64, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        block(x).sum().backward()
    assert sum(saved.values()) < 4096 * 4096 * 4 / 4


@pytest.mark.parametrize("form,extra", [
    ("multihead", 0), ("l2", -32 * 4),  # l2: no key convolution
    ("local", 0), ("deformable", 4 * 2 * 4 + 2 * 4),  # the offset convolution: C/8 -> 2 x points, with bias
])
def test_parameter_counts_of_the_new_forms(form, extra):
    paper = 3 * 32 * 4 + 4 * 32 + 1
    assert sum(p.numel() for p in make(form).parameters()) == paper + extra
    learned = sum(p.numel() for p in make(form, pos="learned").parameters())
    assert learned == paper + extra + 4 * 8 * 8  # a C/8 x 8 x 8 table


def test_sincos_encoding_of_rows_and_columns():
    table = sincos_table(8, 5)[0]  # rows: channels 0-3 (sin, sin, cos, cos), columns: 4-7
    assert table.shape == (8, 5, 5)
    torch.testing.assert_close(table[0, :, 0], torch.sin(torch.arange(5.0)))
    torch.testing.assert_close(table[2, :, 3], torch.cos(torch.arange(5.0)))
    torch.testing.assert_close(table[1, 2, :], torch.full((5,), math.sin(2 / 100)))
    torch.testing.assert_close(table[4, 1, :], torch.sin(torch.arange(5.0)))
    assert torch.equal(table[:4, :, 0], table[:4, :, 4]) and torch.equal(table[4:, 0], table[4:, 3])


@pytest.mark.parametrize("pos", ["none", "sincos"])
def test_a_positional_encoding_ends_the_full_blocks_indifference_to_position(pos):
    """Without one, full attention and 1x1 convolutions commute with any reordering of the positions."""
    torch.manual_seed(0)
    block = with_gamma(make("paper", pos=pos))
    x = torch.randn(1, 32, 8, 8)
    with torch.no_grad():
        same = torch.allclose(block(x.roll(3, -1)), block(x).roll(3, -1), atol=1e-5)
    assert same == (pos == "none")


@pytest.mark.parametrize("overrides,message", [
    ({"model.attention_heads": 2}, "model.attention_heads: '2' applies only with model.attention=multihead or l2"),
    ({"model.attention": "local", "model.attention_window": 4}, "model.attention_window: 4 must be an odd number"),
    ({"model.attention": "deformable", "model.attention_points": 8}, "model.attention_points: 8 must be a square"),
    ({"model.attention": "multihead", "model.attention_heads": 4},
     "model.attention_heads: 4 heads do not divide the 2 query channels of model.g_channels=16"),
    ({"model.attention_pos": "rope"}, "model.attention_pos: 'rope' is not one of none, sincos, learned"),
])
def test_attention_options_are_checked_with_the_config(overrides, message):
    with pytest.raises(ConfigError, match=message):
        tiny_config(**overrides)  # set and validated


@pytest.mark.parametrize("overrides", [
    {"model.attention": "multihead", "model.attention_heads": 2},
    {"model.attention": "l2", "model.attention_heads": 2},
    {"model.attention": "local", "model.attention_window": 5},
    {"model.attention": "deformable", "model.attention_points": 4},
    {"model.attention_pos": "learned"},
], ids=lambda o: "-".join(str(v) for v in o.values()))
def test_every_form_trains_resumes_exactly_and_shows_its_maps(tmp_path, overrides):
    a, b = straight_and_resumed(tmp_path, overrides, steps=4)
    for net in ("generator", "discriminator", "generator_ema"):
        assert all(torch.equal(a[net][name], b[net][name]) for name in a[net]), net
    assert a["generator"]["blocks.attn16.gamma"].abs() > 0
    assert len(list((tmp_path / "halves" / "samples").glob("*.png"))) == 2
    page = write_report(tmp_path / "halves").read_text()
    data = json.loads(re.search(r'<script id="report-data" type="application/json">(.*?)</script>', page, re.DOTALL)[1])
    layers = data["explorer"]["layers"]
    assert [layer["name"] for layer in layers] == ["G attn16", "D attn8"] and layers[0]["keys"] == [16, 16]
