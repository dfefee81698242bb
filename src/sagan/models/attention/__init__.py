"""Self-attention blocks, one registry of forms (ATTENTION: `model.attention`'s choices).

Every block maps x to `x + gamma * o(x)` with gamma starting at 0 (a fresh block is the identity), adds an optional
positional encoding to its queries and keys (`model.attention_pos`), and returns its dense attention map on request.
"""

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch import nn

from .block import AttentionBlock
from .deformable import DeformableAttention
from .dot import SelfAttention
from .local import LocalAttention
from .position import POSITIONS


@dataclass(frozen=True)
class AttentionOptions:
    """Which block, with what: the `model.attention*` fields."""

    form: str = "paper"
    heads: int = 4  # multihead, l2
    window: int = 7  # local
    points: int = 9  # deformable
    pos: str = "none"


@dataclass(frozen=True)
class Entry:
    block: Callable[..., AttentionBlock]
    options: tuple[str, ...] = ()  # the AttentionOptions fields it takes, besides pos


ATTENTION: dict[str, Entry] = {
    "paper": Entry(partial(SelfAttention, form="paper")),
    "official": Entry(partial(SelfAttention, form="official")),
    "popular": Entry(partial(SelfAttention, form="popular")),
    "multihead": Entry(partial(SelfAttention, form="paper"), ("heads",)),
    "l2": Entry(partial(SelfAttention, form="l2"), ("heads",)),
    "local": Entry(LocalAttention, ("window",)),
    "deformable": Entry(DeformableAttention, ("points",)),
}


def build(options: AttentionOptions, channels: int, resolution: int, spectral_norm: bool = False,
          init: str = "orthogonal") -> AttentionBlock:
    """The block `options` describe, for `channels`-channel maps of `resolution` x `resolution`."""
    entry = ATTENTION[options.form]
    return entry.block(channels, spectral_norm=spectral_norm, init=init, pos=options.pos, resolution=resolution,
                       **{name: getattr(options, name) for name in entry.options})


def attention_layers(module: nn.Module) -> dict[str, AttentionBlock]:
    """The attention blocks of a network by their module names."""
    return {name: m for name, m in module.named_modules() if isinstance(m, AttentionBlock)}


__all__ = ["ATTENTION", "POSITIONS", "AttentionBlock", "AttentionOptions", "DeformableAttention", "LocalAttention",
           "SelfAttention", "attention_layers", "build"]
