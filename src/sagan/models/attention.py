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


# How `attend` computes softmax(q k^T) v, by the number of query-key pairs per image (measured forward + backward on a
# 2-core AVX-512 CPU, batch 64, q/k head 8, v head 64):
# - on the CPU, up to MAX_SCORES_PER_IMAGE_CPU (bf16/fp16: _HALF_CPU), matmuls over a few images at a time
#   (`_ChunkedAttention`), so that their scores stay in cache: at N = 1024 0.8x the fused kernel's time in float32
#   and 0.45x in bfloat16, at N = 2048 1.0x and 0.55x;
# - elsewhere, up to MAX_SCORES_PER_IMAGE, one matmul + softmax over the whole batch within MAX_MATERIALISED_BYTES;
# - otherwise the fused kernel, in memory linear in N.
MAX_SCORES_PER_IMAGE_CPU = 2**20  # N <= 1024 for a square map
MAX_SCORES_PER_IMAGE_HALF_CPU = 2**22  # N <= 2048
CPU_CHUNK_BYTES = 2**22  # 4 MiB of scores per chunk: 1 image at N = 1024 in float32, 2 in bfloat16
MAX_SCORES_PER_IMAGE = 2**18  # N <= 512
MAX_MATERIALISED_BYTES = 2**27  # 128 MiB


def images_per_chunk(q: torch.Tensor, k: torch.Tensor) -> int:
    """How many images' score matrices `attend` materialises at once; 0 when it runs the fused kernel."""
    scores = q.shape[1] * k.shape[1]  # per image
    bytes_per_image = scores * q.element_size()
    if q.device.type == "cpu":
        limit = MAX_SCORES_PER_IMAGE_HALF_CPU if q.element_size() == 2 else MAX_SCORES_PER_IMAGE_CPU
        return min(q.shape[0], max(1, CPU_CHUNK_BYTES // bytes_per_image)) if scores <= limit else 0
    fits = scores <= MAX_SCORES_PER_IMAGE and q.shape[0] * bytes_per_image <= MAX_MATERIALISED_BYTES
    return q.shape[0] if fits else 0


def attend(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(q k^T) v for (B, N, d) queries and keys and (B, N, C) values; scale 1, as the paper has no 1/sqrt(d).

    Score matrices are materialised for small maps (`images_per_chunk`). Larger ones never are: fused attention
    kernels (CPU flash attention among them) need one head size for q, k and v and contiguous rows; padding q and k
    with zeros up to v's size leaves every dot product q.k unchanged and lets them run, in memory linear in N,
    instead of the N x N fallback.
    """
    chunk = images_per_chunk(q, k)
    if chunk == q.shape[0]:
        return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
    if chunk:
        return _ChunkedAttention.apply(q, k, v, chunk)
    pad = v.shape[-1] - q.shape[-1]
    if pad > 0:
        q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
    q, k, v = (t.contiguous().unsqueeze(1) for t in (q, k, v))
    return F.scaled_dot_product_attention(q, k, v, scale=1.0).squeeze(1)


class _ChunkedAttention(torch.autograd.Function):
    """softmax(q k^T) v a few images at a time, the scores recomputed in the backward pass instead of stored.

    The products with the small head size d are taken as (d, N) @ (N, N): on the CPU, (N, N) @ (N, d) runs 2x (bf16)
    to 10x (float32) slower.
    """

    @staticmethod
    def forward(ctx, q, k, v, chunk):
        k_t = k.transpose(1, 2).contiguous()
        out = torch.cat([torch.softmax(q[i:i + chunk] @ k_t[i:i + chunk], dim=-1) @ v[i:i + chunk]
                         for i in range(0, q.shape[0], chunk)])
        ctx.save_for_backward(q, k, v, out)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad):
        # Differentiable again (the gradient penalty's double backward): the inputs are saved, not k^T, and nothing
        # that autograd may need is modified in place.
        q, k, v, out = ctx.saved_tensors
        q_t, k_t, v_t = (t.transpose(1, 2).contiguous() for t in (q, k, v))
        # The softmax backward: grad_scores = p * (grad_p - sum_j p_j grad_p_j), where that sum equals grad . out.
        grad_out_dot_out = (grad * out).sum(-1, keepdim=True)
        grads_q_t, grads_k_t, grads_v = [], [], []
        for i in range(0, q.shape[0], ctx.chunk):
            c = slice(i, i + ctx.chunk)
            p = torch.softmax(q[c] @ k_t[c], dim=-1)
            grads_v.append(p.transpose(1, 2) @ grad[c])
            grad_scores = p * (grad[c] @ v_t[c] - grad_out_dot_out[c])
            grads_q_t.append(k_t[c] @ grad_scores.transpose(1, 2))
            grads_k_t.append(q_t[c] @ grad_scores)
        return torch.cat(grads_q_t).transpose(1, 2), torch.cat(grads_k_t).transpose(1, 2), torch.cat(grads_v), None


def attention_layers(module: nn.Module) -> dict[str, SelfAttention]:
    """The attention blocks of a network by their module names."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SelfAttention)}
