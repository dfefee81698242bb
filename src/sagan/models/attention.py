"""The SAGAN self-attention block (Zhang et al. 2018, arXiv 1805.08318, section 3)."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .layers import LayerFactory


@dataclass(frozen=True)
class Form:
    """What a form of the block is made of: the value convolution's width (C / value_div), biases, the 1x1 output
    convolution back to C channels, and the max-pooling of keys and values (key_stride x key_stride)."""

    value_div: int
    bias: bool
    out: bool
    key_stride: int


# model.attention: the forms SelfAttention implements.
FORMS: dict[str, Form] = {
    # Section 3's final equations: f, g, h to C/8 channels, W_v from C/8 back to C, no pooling, no biases.
    "paper": Form(8, bias=False, out=True, key_stride=1),
    # The released TensorFlow block (brain-research/self-attention-gan): h to C/2, keys and values max-pooled 2x2.
    "official": Form(2, bias=False, out=True, key_stride=2),
    # The first arXiv version and the popular PyTorch repository (heykeetae/Self-Attention-GAN): values with C
    # channels, biases, no output convolution.
    "popular": Form(1, bias=True, out=False, key_stride=1),
}


class SelfAttention(nn.Module):
    """Self-attention over the H*W positions of a feature map, added to the input as `x + gamma * o`.

    Query (the paper's g) and key (f) are 1x1 convolutions to C/8 channels, value (h) one to C / value_div; each
    output position is the softmax-weighted sum of the values, mapped back to C channels by a 1x1 convolution
    (W_v) where the form has one. See FORMS for each form. gamma starts at 0, so a fresh block is the identity and
    the network first relies on local features.
    """

    def __init__(self, channels: int, form: str = "paper", spectral_norm: bool = False, init: str = "orthogonal"):
        super().__init__()
        if form not in FORMS:
            raise ValueError(f"attention form '{form}' is not one of {', '.join(FORMS)}")
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels (it reduces them by 8), got {channels}")
        self.form, spec = form, FORMS[form]
        layers = LayerFactory(spectral_norm, init)
        value_channels = channels // spec.value_div
        self.query = layers.conv(channels, channels // 8, 1, bias=spec.bias)
        self.key = layers.conv(channels, channels // 8, 1, bias=spec.bias)
        self.value = layers.conv(channels, value_channels, 1, bias=spec.bias)
        self.out = layers.conv(value_channels, channels, 1, bias=False) if spec.out else None
        self.gamma = nn.Parameter(torch.zeros(1))

    @property
    def key_stride(self) -> int:
        """Feature positions per key position along each axis: the official form max-pools keys 2x2."""
        return FORMS[self.form].key_stride

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Returns the output, or `(output, attention)` with attention of shape (B, N_query, N_key)."""
        b, _, h, w = x.shape
        q, k, v = self.query(x), self.key(x), self.value(x)
        if self.key_stride > 1:
            k, v = F.max_pool2d(k, self.key_stride), F.max_pool2d(v, self.key_stride)
        q, k, v = (t.flatten(2).transpose(1, 2) for t in (q, k, v))  # (B, positions, channels)
        o = self.attend(q, k, v).transpose(1, 2).reshape(b, -1, h, w)
        if self.out is not None:
            o = self.out(o)
        # x + gamma * o in o's precision: under autocast a float32 gamma would promote the whole map to float32.
        y = torch.addcmul(x, self.gamma.to(o.dtype), o)
        if return_attention:
            return y, torch.softmax(q.float() @ k.float().transpose(1, 2), dim=-1)
        return y

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """softmax(q k^T) v for (B, N, d) queries and keys and (B, N, C) values; scale 1: the paper has no
        1/sqrt(d)."""
        return F.scaled_dot_product_attention(q.unsqueeze(1), k.unsqueeze(1), v.unsqueeze(1), scale=1.0).squeeze(1)


def attention_layers(module: nn.Module) -> dict[str, SelfAttention]:
    """The attention blocks of a network by their module names."""
    return {name: m for name, m in module.named_modules() if isinstance(m, SelfAttention)}
