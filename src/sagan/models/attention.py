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
        # In o's precision: under autocast the float32 gamma would promote the whole map to float32 (and the next
        # convolution would cast it back), which cost a fifth of a bf16 training step on the CPU.
        y = torch.addcmul(x, self.gamma.to(o.dtype), o)
        if return_attention:
            return y, torch.softmax(q.float() @ k.float().transpose(1, 2), dim=-1)
        return y


# How `attend` computes softmax(q k^T) v, by the number of query-key pairs per image (measured forward + backward,
# q/k head 8, v head 64, on the 2-core AVX-512 CPUs of the benchmarks, an AMD EPYC and an Intel Xeon with AMX):
# - on the CPU, up to MAX_SCORES_PER_IMAGE_CPU, matmuls over a few images at a time (`_ChunkedAttention`): at
#   N = 1024 0.85x-0.9x the fused kernel's time in float32; in bfloat16 0.45x on the AMD CPU, 0.9x on the Intel one,
#   whose AMX units make the fused kernel 3x faster than chunks at N = 2048. Chunks of 16 MiB of scores were
#   1.15x-1.2x faster there than chunks of 4 MiB (one or two images: a matmul over several images gives each
#   thread whole images), 1.03x-1.06x on the training step;
# - elsewhere, up to MAX_SCORES_PER_IMAGE, one matmul + softmax over the whole batch within MAX_MATERIALISED_BYTES;
# - otherwise the fused kernel, in memory linear in N.
MAX_SCORES_PER_IMAGE_CPU = 2**20  # N <= 1024 for a square map
CPU_CHUNK_BYTES = 2**24  # 16 MiB of scores per chunk: 4 images at N = 1024 in float32, 8 in bfloat16
MAX_SCORES_PER_IMAGE = 2**18  # N <= 512
MAX_MATERIALISED_BYTES = 2**27  # 128 MiB


def images_per_chunk(q: torch.Tensor, k: torch.Tensor) -> int:
    """How many images' score matrices `attend` materialises at once; 0 when it runs the fused kernel."""
    scores = q.shape[1] * k.shape[1]  # per image
    bytes_per_image = scores * q.element_size()
    if q.device.type == "cpu":
        return min(q.shape[0], max(1, CPU_CHUNK_BYTES // bytes_per_image)) if scores <= MAX_SCORES_PER_IMAGE_CPU else 0
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

    Each call computes its chunks' scores in one reused buffer, and the products straight into the outputs: a fresh
    multi-megabyte tensor per chunk costs page faults and cache misses (the float32 forward + backward at G's 32x32
    map took 1.1x-1.2x longer that way). The backward's products with q and k's small head size d read the score
    gradients along their rows, as grad_scores @ k and q^T @ grad_scores: read down their columns, they took
    1.3x-1.9x as long at d = 8.
    """

    @staticmethod
    def forward(ctx, q, k, v, chunk):
        k_t = k.transpose(1, 2).contiguous()
        out = v.new_empty(q.shape[0], q.shape[1], v.shape[2])
        for c, p in _chunks(q, k_t, chunk):
            torch.matmul(p, v[c], out=out[c])
        ctx.save_for_backward(q, k, v, out)
        ctx.chunk = chunk
        return out

    @staticmethod
    def backward(ctx, grad):
        q, k, v, out = ctx.saved_tensors
        if torch.is_grad_enabled():
            return (*_differentiable_grads(q, k, v, grad, ctx.chunk), None)
        # The softmax backward: grad_scores = p * (grad_p - sum_j p_j grad_p_j), where grad_p = grad v^T and the sum
        # equals grad . out. One matmul gives both terms, [grad, grad . out] @ [v, -1]^T: a baddbmm first copies the
        # broadcast sum into every score (the float32 backward took 1.04x as long). The concatenations hold grad and v
        # in (positions, channels) layout, whatever the network's: P^T @ grad is 1.5x faster than grad^T @ P in
        # float32.
        grad_ext = torch.cat([grad, (grad * out).sum(-1, keepdim=True)], -1)
        v_ext = torch.cat([v, v.new_full((*v.shape[:2], 1), -1)], -1)
        grad = grad_ext[..., :-1]
        q_t, k_t = (t.transpose(1, 2).contiguous() for t in (q, k))
        grad_q, grad_k_t, grad_v = q.new_empty(q.shape), torch.empty_like(k_t), v.new_empty(v.shape)
        buffer = q.new_empty(min(ctx.chunk, q.shape[0]), q.shape[1], k.shape[1])
        for c, p in _chunks(q, k_t, ctx.chunk):
            torch.matmul(p.transpose(1, 2), grad[c], out=grad_v[c])
            grad_scores = torch.matmul(grad_ext[c], v_ext[c].transpose(1, 2), out=buffer[:len(p)]).mul_(p)
            torch.matmul(grad_scores, k[c], out=grad_q[c])
            torch.matmul(q_t[c], grad_scores, out=grad_k_t[c])
        return grad_q, grad_k_t.transpose(1, 2), grad_v, None


def _chunks(q: torch.Tensor, k_t: torch.Tensor, chunk: int):
    """(slice, softmax(q k^T) of those images) for each chunk; the scores live in one buffer, overwritten each time."""
    scores = q.new_empty(min(chunk, q.shape[0]), q.shape[1], k_t.shape[2])
    for i in range(0, q.shape[0], chunk):
        c = slice(i, i + chunk)
        q_c = q[c]
        p = scores[:len(q_c)]
        torch.matmul(q_c, k_t[c], out=p)
        yield c, torch.softmax(p, dim=-1, out=p)


def _differentiable_grads(q, k, v, grad, chunk):
    """The backward pass as autograd sees it, for a double backward (WGAN-GP's and R1's penalties through D): the
    fast backward above writes into buffers, which autograd cannot differentiate."""
    grads = []
    for i in range(0, q.shape[0], chunk):
        inputs = [t[i:i + chunk] if t.requires_grad else t[i:i + chunk].detach().requires_grad_() for t in (q, k, v)]
        qc, kc, vc = inputs
        out = torch.softmax(qc @ kc.transpose(1, 2), dim=-1) @ vc
        grads.append(torch.autograd.grad(out, inputs, grad[i:i + chunk], create_graph=True))
    return [torch.cat(g) for g in zip(*grads)]


def attention_layers(module: nn.Module) -> dict[str, SelfAttention]:
    """The attention blocks of a network by their module names."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SelfAttention)}
