"""Local self-attention: each query attends to the window x window neighbourhood around it (as in Image
Transformer's and Stand-Alone Self-Attention's local 2D blocks), so memory and time grow linearly with the
positions: the form for 64x64 feature maps and above."""

import torch
import torch.nn.functional as F

from .block import AttentionBlock, Form, dense_map


class LocalAttention(AttentionBlock):
    """The paper form's convolutions and scale-1 logits q.k, over the keys of a window x window neighbourhood
    centred on each query; neighbours outside the map are left out of the softmax."""

    def __init__(self, channels: int, spectral_norm: bool = False, init: str = "orthogonal", window: int = 7,
                 pos: str = "none", resolution: int | None = None):
        if window < 1 or window % 2 == 0:
            raise ValueError(f"the attention window must be an odd number of positions, got {window}")
        super().__init__(channels, Form(), spectral_norm, init, pos, resolution)
        self.window = window

    def mix(self, x: torch.Tensor, return_attention: bool):
        b, _, h, w = x.shape
        q, k, v = self.project(x)
        p = self.window // 2
        keys = neighbours(h, w, self.window, x.device)  # (1, window^2, N), -1 outside the map
        # One shifted view of the zero-padded keys and values per window position: the backward pass keeps the
        # padded maps once, not window^2 copies as an unfold would.
        k, v = F.pad(k, (p, p, p, p)), F.pad(v, (p, p, p, p))
        shifts = [(dy, dx) for dy in range(self.window) for dx in range(self.window)]
        logits = torch.stack([(q * k[:, :, dy:dy + h, dx:dx + w]).sum(1) for dy, dx in shifts], 1).flatten(2)
        weights = torch.softmax(logits.masked_fill(keys < 0, float("-inf")), dim=1)  # (B, window^2, N)
        spread = weights.view(b, -1, 1, h, w)
        o = sum(spread[:, i] * v[:, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(shifts))
        if not return_attention:
            return o, None
        return o, dense_map(weights.float().transpose(1, 2), keys.transpose(1, 2), h * w)


def neighbours(h: int, w: int, window: int, device: torch.device) -> torch.Tensor:
    """(1, window^2, h * w): the flat index of each query's neighbours in F.unfold's order; -1 outside the map."""
    index = torch.arange(1, h * w + 1, device=device, dtype=torch.float32).view(1, 1, h, w)
    return F.unfold(index, window, padding=window // 2).long() - 1
