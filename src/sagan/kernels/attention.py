"""Attention kernels: softmax(q k^T) v by the fastest way for its size, with the same result as the plain block.

- On the CPU, for small maps: matmuls over a few images at a time (`ChunkedAttention`), the scores in one reused
  buffer and recomputed in the backward pass instead of stored.
- Elsewhere, for small maps: one matmul and softmax over the whole batch.
- Otherwise: the fused kernel, in memory linear in N. Fused kernels (CPU flash attention among them) need one head
  size for q, k and v; zero-padding q and k up to v's size leaves every dot product q.k unchanged and lets them run,
  instead of the N x N fallback (and zero-padding v, where it is the smaller, adds output channels to cut off).
"""

import torch
import torch.nn.functional as F


class KernelAttention:
    """Mixed into SelfAttention by `sagan.kernels.install`: `attend` picks its kernel by size."""

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        t = self.kernel_thresholds
        chunk = images_per_chunk(q, k, t)
        if chunk == q.shape[0]:
            return torch.softmax(q @ k.transpose(1, 2), dim=-1) @ v
        if chunk:
            return ChunkedAttention.apply(q, k, v, chunk)
        width, pad = v.shape[-1], v.shape[-1] - q.shape[-1]
        if pad > 0:
            q, k = F.pad(q, (0, pad)), F.pad(k, (0, pad))
        elif pad < 0:  # zero value channels, cut off the output again
            v = F.pad(v, (0, -pad))
        q, k, v = (t.contiguous().unsqueeze(1) for t in (q, k, v))
        return F.scaled_dot_product_attention(q, k, v, scale=1.0).squeeze(1)[..., :width]


def images_per_chunk(q: torch.Tensor, k: torch.Tensor, t) -> int:
    """How many images' score matrices `attend` materialises at once under thresholds `t`; 0: the fused kernel."""
    scores = q.shape[1] * k.shape[1]  # per image
    bytes_per_image = scores * q.element_size()
    if q.device.type == "cpu":
        if scores > t.attention_cpu_max_scores:
            return 0
        return min(q.shape[0], max(1, t.attention_cpu_chunk_bytes // bytes_per_image))
    fits = scores <= t.attention_max_scores and q.shape[0] * bytes_per_image <= t.attention_max_batch_bytes
    return q.shape[0] if fits else 0


class ChunkedAttention(torch.autograd.Function):
    """softmax(q k^T) v a few images at a time, the scores recomputed in the backward pass instead of stored.

    The scores live in one reused buffer and the products go straight into the outputs: a fresh multi-megabyte
    tensor per chunk costs page faults and cache misses. The backward's products with the small head size d read
    the score gradients along their rows (grad_scores @ k, q^T @ grad_scores), which is faster than down columns.
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
        # equals grad . out; one matmul gives both terms, [grad, grad . out] @ [v, -1]^T. The concatenations also
        # hold grad and v in (positions, channels) layout, whatever the network's, the faster one for P^T @ grad.
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
