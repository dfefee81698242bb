"""What every attention block shares: x + gamma * o with gamma starting at 0, the 1x1 query, key and value
convolutions, the positional encoding of queries and keys, and the dense attention maps the viz tools read."""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..layers import LayerFactory
from .position import positional_encoding


@dataclass(frozen=True)
class Form:
    """A block's convolutions: the value convolution's width (C / value_div), biases, the 1x1 output convolution
    back to C channels, the max-pooling of keys and values (key_stride x key_stride), keys that are the queries
    (tied: one convolution for both) and L2 logits."""

    value_div: int = 8
    bias: bool = False
    out: bool = True
    key_stride: int = 1
    tied: bool = False
    l2: bool = False  # logits -||q - k||^2 / sqrt(d) instead of q.k


class AttentionBlock(nn.Module):
    """`x + gamma * o(x)`, where `mix` computes o from the queries (the paper's g), keys (f) and values (h): 1x1
    convolutions to C/8, C/8 and C / value_div channels, the positional encoding added to queries and keys. gamma
    starts at 0, so a fresh block is the identity and the network first relies on local features.
    `forward(x, return_attention=True)` also returns the attention of every query position over the key positions,
    (B, N_query, N_key), dense, for the viz tools."""

    def __init__(self, channels: int, form: Form, spectral_norm: bool = False, init: str = "orthogonal",
                 pos: str = "none", resolution: int | None = None):
        super().__init__()
        if channels < 8:
            raise ValueError(f"self-attention needs at least 8 channels (it reduces them by 8), got {channels}")
        self.spec = form
        layers = LayerFactory(spectral_norm, init)
        self.value_channels = channels // form.value_div
        self.query = layers.conv(channels, channels // 8, 1, bias=form.bias)
        self.key = None if form.tied else layers.conv(channels, channels // 8, 1, bias=form.bias)
        self.value = layers.conv(channels, self.value_channels, 1, bias=form.bias)
        self.out = layers.conv(self.value_channels, channels, 1, bias=False) if form.out else None
        self.gamma = nn.Parameter(torch.zeros(1))
        self.pos = positional_encoding(pos, channels // 8, resolution)

    @property
    def key_stride(self) -> int:
        """Feature positions per key position along each axis: the official form max-pools keys 2x2."""
        return self.spec.key_stride

    def forward(self, x: torch.Tensor, return_attention: bool = False):
        """Returns the output, or `(output, attention)`."""
        o, attention = self.mix(x, return_attention)
        if self.out is not None:
            o = self.out(o)
        # x + gamma * o in o's precision: under autocast a float32 gamma would promote the whole map to float32.
        y = torch.addcmul(x, self.gamma.to(o.dtype), o)
        return (y, attention) if return_attention else y

    def project(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The query, key and value maps (B, channels, H, W), keys and values pooled by key_stride."""
        q = self.encode(self.query(x))
        k = q if self.key is None else self.encode(self.key(x))
        v = self.value(x)
        if self.key_stride > 1:
            k, v = F.max_pool2d(k, self.key_stride), F.max_pool2d(v, self.key_stride)
        return q, k, v

    def encode(self, t: torch.Tensor) -> torch.Tensor:
        """Queries or keys with the positional encoding added."""
        return t if self.pos is None else self.pos(t)

    def mix(self, x: torch.Tensor, return_attention: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The attention output o (B, value channels, H, W) before the output convolution, and the attention map
        when asked for."""
        raise NotImplementedError


def dense_map(weights: torch.Tensor, keys: torch.Tensor, n_keys: int) -> torch.Tensor:
    """(B, N, n_keys) attention from the weights (B, N, K) each query gives K key positions `keys` (broadcastable
    to the weights; -1: outside the map, left out), repeated keys summed."""
    keys = keys.expand_as(weights)
    dense = weights.new_zeros(*weights.shape[:2], n_keys)
    return dense.scatter_add_(2, keys.clamp(min=0), weights.masked_fill(keys < 0, 0))
