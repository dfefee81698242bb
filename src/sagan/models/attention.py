"""The SAGAN self-attention block (Zhang et al. 2018, arXiv 1805.08318, section 3)."""

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerFactory

FORMS = ("paper", "official")


class SelfAttention(nn.Module):
    """Self-attention over the H*W positions of a feature map, added to the input as `x + gamma * o`.

    `form="paper"`: 1x1 convs with bias, as the popular PyTorch implementation: query (the paper's g) and key (f)
    to C/8 channels, value (h) to C channels; each output position is the softmax-weighted sum of the values.
    `form="official"`: the released TensorFlow block: query to C/8, key to C/8 and value to C/2, both 2x2 max-pooled
    (4x fewer key positions), then a 1x1 conv from C/2 back to C; no biases.
    gamma starts at 0, so a fresh block is the identity and the network first relies on local features.
    """

    def __init__(self, channels: int, form: str = "paper", spectral_norm: bool = False, init: str = "orthogonal"):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"attention form '{form}' is not one of {', '.join(FORMS)}")
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels (it reduces them by 8), got {channels}")
        self.form = form
        layers = LayerFactory(spectral_norm, init)
        bias = form == "paper"
        value_channels = channels if form == "paper" else channels // 2
        self.query = layers.conv(channels, channels // 8, 1, bias=bias)
        self.key = layers.conv(channels, channels // 8, 1, bias=bias)
        self.value = layers.conv(channels, value_channels, 1, bias=bias)
        self.out = layers.conv(value_channels, channels, 1, bias=False) if form == "official" else None
        self.gamma = nn.Parameter(torch.zeros(1))

    @property
    def key_stride(self) -> int:
        """Feature positions per key position along each axis: the official form max-pools keys 2x2."""
        return 2 if self.form == "official" else 1

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Returns the output, or `(output, attention)` with attention of shape (B, N_query, N_key)."""
        b, _, h, w = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.form == "official":
            k, v = F.max_pool2d(k, self.key_stride), F.max_pool2d(v, self.key_stride)
        q, k, v = (t.flatten(2).transpose(1, 2) for t in (q, k, v))  # (B, positions, channels)
        o = attend(q, k, v)
        o = o.transpose(1, 2).reshape(b, -1, h, w)
        if self.out is not None:
            o = self.out(o)
        y = x + self.gamma * o
        if return_attention:
            return y, torch.softmax(q.float() @ k.float().transpose(1, 2), dim=-1)
        return y


# One batched matmul + softmax (the score matrix materialised) or the fused kernel (memory linear in N, but q and k
# padded to v's size): the matmul is faster up to this many query-key pairs per image (measured on a 2-core AVX-512
# CPU, forward + backward: float32 0.8x the fused kernel's time at N = 512, 1.5x at 1024; bfloat16 0.45x at 1024,
# 0.87x at 2048, 1.3x at 4096; these are CPU figures, so other devices keep the float32 limit in every precision), and
# only while one call's scores fit in MAX_MATERIALISED_BYTES.
MAX_SCORES_PER_IMAGE = 2**18  # N <= 512 for a square map
MAX_SCORES_PER_IMAGE_HALF_CPU = 2**22  # bfloat16 / float16 on the CPU: N <= 2048
MAX_MATERIALISED_BYTES = 2**27  # 128 MiB: 64 x 1024^2 scores in bf16 (G's 32x32 map at batch 64), 2^25 in float32


def materialises(q: torch.Tensor, k: torch.Tensor) -> bool:
    """Whether `attend` computes these queries and keys with the score matrix materialised."""
    per_image = q.shape[1] * k.shape[1]
    half_cpu = q.element_size() == 2 and q.device.type == "cpu"
    limit = MAX_SCORES_PER_IMAGE_HALF_CPU if half_cpu else MAX_SCORES_PER_IMAGE
    return per_image <= limit and q.shape[0] * per_image * q.element_size() <= MAX_MATERIALISED_BYTES


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v for (B, N, d) queries and keys and (B, N, C) values; scale 1, as the paper has no 1/sqrt(d).

    Small score matrices are materialised (`materialises`). Larger ones never are: fused attention kernels (CPU
    flash attention among them) need one head size for q, k and v and contiguous rows; padding q and k with zeros
    up to v's size leaves every dot product q.k unchanged and lets them run, in memory linear in N, instead of the
    N x N fallback.
    """
    if materialises(q, k):
        return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
    pad = v.shape[-1] - q.shape[-1]
    if pad > 0:
        q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
    q, k, v = (t.contiguous().unsqueeze(1) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=1.0).squeeze(1)


def attention_layers(module: nn.Module) -> dict[str, SelfAttention]:
    """The attention blocks of a network by their module names."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SelfAttention)}
