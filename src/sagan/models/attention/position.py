"""2D positional encodings added to the queries and keys of an attention block (`model.attention_pos`)."""

import torch
from torch import nn

POSITIONS = ("none", "sincos", "learned")  # model.attention_pos


def sincos_table(channels: int, size: int) -> torch.Tensor:
    """The fixed 2D sine-cosine encoding of a size x size map, (1, channels, size, size): the first half of the
    channels encode the row, the others the column, each as sines then cosines of geometric frequencies from 1 to
    1/10000 (Vaswani et al. 2017, extended to 2D as in MAE)."""
    halves = []
    for axis, part in ((0, channels // 2), (1, channels - channels // 2)):
        sines = (part + 1) // 2
        frequencies = 10000.0 ** (-torch.arange(sines, dtype=torch.float64) / max(sines, 1))
        angle = torch.arange(size, dtype=torch.float64)[:, None] * frequencies  # (size, sines)
        table = torch.cat([angle.sin(), angle.cos()], dim=1)[:, :part].T  # (part, size)
        halves.append(table[:, :, None].expand(-1, -1, size) if axis == 0 else table[:, None, :].expand(-1, size, -1))
    return torch.cat(halves).float().unsqueeze(0)


class PositionalEncoding(nn.Module):
    """Adds a (1, channels, size, size) table to (B, channels, size, size) maps: fixed sines and cosines, or a
    learned table initialised N(0, 0.02) as ViT's."""

    def __init__(self, kind: str, channels: int, size: int):
        super().__init__()
        if kind not in POSITIONS[1:]:
            raise ValueError(f"positional encoding '{kind}' is not one of {', '.join(POSITIONS[1:])}")
        self.kind, self.size = kind, size
        if kind == "learned":
            self.table = nn.Parameter(torch.empty(1, channels, size, size))
            nn.init.trunc_normal_(self.table, std=0.02)
        else:  # not in the state dict: it is a function of the shape
            self.register_buffer("table", sincos_table(channels, size), persistent=False)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        if t.shape[-2:] != (self.size, self.size):
            raise ValueError(f"this positional encoding is for {self.size}x{self.size} maps, got "
                             f"{t.shape[-2]}x{t.shape[-1]}")
        return t + self.table.to(t.dtype)


def positional_encoding(kind: str, channels: int, size: int | None) -> PositionalEncoding | None:
    """The encoding of `kind` for maps of `size`, or None for `none`."""
    if kind == "none":
        return None
    if size is None:
        raise ValueError("a positional encoding needs the block's feature resolution")
    return PositionalEncoding(kind, channels, size)

