import pytest
import torch
import torch.nn.functional as F

from sagan.models import SelfAttention


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
