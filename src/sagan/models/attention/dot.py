"""Full self-attention over all positions: the SAGAN block (Zhang et al. 2018, arXiv 1805.08318, section 3) in its
paper, official and popular forms, and the L2 form with tied queries and keys (Kim et al. 2021); with heads."""

import math

import torch
import torch.nn.functional as F

from .block import AttentionBlock, Form

# The forms of the SAGAN block.
FORMS: dict[str, Form] = {
    # Section 3's final equations: f, g, h to C/8 channels, W_v from C/8 back to C, no pooling, no biases.
    "paper": Form(),
    # The released TensorFlow block (brain-research/self-attention-gan): h to C/2, keys and values max-pooled 2x2.
    "official": Form(value_div=2, key_stride=2),
    # The first arXiv version and the popular PyTorch repository (heykeetae/Self-Attention-GAN): values with C
    # channels, biases, no output convolution.
    "popular": Form(value_div=1, bias=True, out=False),
    # Logits -||q_i - k_j||^2 / sqrt(d) with the keys made by the query convolution (tied weights), which makes the
    # block Lipschitz where the dot product is not (Kim, Papamakarios and Mnih 2021; ViTGAN's and GigaGAN's
    # discriminators use it); the paper form otherwise.
    "l2": Form(tied=True, l2=True),
}


class SelfAttention(AttentionBlock):
    """Each output position is the softmax(q k^T)-weighted sum of the values of all (key) positions, scale 1 as in
    the paper; with `heads` > 1 the query, key and value channels split into that many groups that attend apart
    (their maps averaged in the returned attention)."""

    def __init__(self, channels: int, form: str = "paper", spectral_norm: bool = False, init: str = "orthogonal",
                 heads: int = 1, pos: str = "none", resolution: int | None = None):
        if form not in FORMS:
            raise ValueError(f"attention form '{form}' is not one of {', '.join(FORMS)}")
        super().__init__(channels, FORMS[form], spectral_norm, init, pos, resolution)
        self.form, self.heads = form, heads
        if heads < 1 or (channels // 8) % heads or self.value_channels % heads:
            raise ValueError(f"{heads} heads do not divide the {channels // 8} query and {self.value_channels} "
                             f"value channels of a {channels}-channel block")

    def mix(self, x: torch.Tensor, return_attention: bool):
        b, _, h, w = x.shape
        q, k, v = (self.split_heads(t) for t in self.project(x))  # (B * heads, positions, channels / heads)
        q, k = self.logit_inputs(q, k)
        o = self.attend(q, k, v).transpose(1, 2).reshape(b, -1, h, w)
        if not return_attention:
            return o, None
        attention = torch.softmax(q.float() @ k.float().transpose(1, 2), dim=-1)
        return o, attention.view(b, self.heads, *attention.shape[1:]).mean(1)

    def split_heads(self, t: torch.Tensor) -> torch.Tensor:
        b, c = t.shape[:2]
        return t.reshape(b * self.heads, c // self.heads, -1).transpose(1, 2)

    def logit_inputs(self, q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Queries and keys whose dot products are the attention logits."""
        if not self.spec.l2:
            return q, k
        # -||q - k||^2 = 2 q.k - ||k||^2 - ||q||^2, and softmax over the keys drops ||q||^2: one more channel
        # carries -||k||^2, so the fused dot-product kernels compute the L2 logits.
        scale = 1 / math.sqrt(q.shape[-1])
        q = torch.cat([q * (2 * scale), q.new_full((*q.shape[:-1], 1), -scale)], dim=-1)
        return q, torch.cat([k, k.square().sum(-1, keepdim=True)], dim=-1)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T) v for (B, N, d) queries and keys and (B, N, C) values; scale 1: the logits are q k^T."""
        return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0).squeeze(1)
