"""Deformable self-attention: each query attends to K points sampled at learned offsets around it (Deformable DETR,
Zhu et al. 2021; DAT, Xia et al. 2022), bilinearly with `grid_sample`: memory and time linear in the positions."""

import math

import torch
from torch import nn

from ..deformable import sample_at
from .block import AttentionBlock, Form, dense_map


class DeformableAttention(AttentionBlock):
    """The paper form's convolutions; a 1x1 convolution of the queries gives each query the offsets of its `points`
    sampling points, which start at a regular sqrt(points) x sqrt(points) grid of spacing 1 around the query (zero
    weights, the grid as bias). Keys and values are sampled there (zero outside the map) and the query attends to
    them with scale-1 logits q.k."""

    def __init__(self, channels: int, spectral_norm: bool = False, init: str = "orthogonal", points: int = 9,
                 pos: str = "none", resolution: int | None = None):
        side = math.isqrt(points)
        if points < 1 or side * side != points:
            raise ValueError(f"the deformable attention's points must be a square number (4, 9, 16, ...), got {points}")
        super().__init__(channels, Form(), spectral_norm, init, pos, resolution)
        self.points = points
        # Plain, without spectral norm: offsets are positions, not features, and a zero weight has no norm.
        self.offsets = nn.Conv2d(channels // 8, 2 * points, 1)
        nn.init.zeros_(self.offsets.weight)
        grid = torch.arange(side, dtype=torch.float32) - (side - 1) / 2
        with torch.no_grad():  # (dy, dx) of each point, row-major
            self.offsets.bias.copy_(torch.stack(torch.meshgrid(grid, grid, indexing="ij"), -1).flatten())

    def mix(self, x: torch.Tensor, return_attention: bool):
        b, _, h, w = x.shape
        q, k, v = self.project(x)
        exact = torch.promote_types(q.dtype, torch.float32)  # positions in float32 at least
        with torch.autocast(x.device.type, enabled=False):
            offsets = self.offsets(q.to(exact)).view(b, self.points, 2, h * w)
        rows = torch.arange(h, device=x.device, dtype=exact).view(h, 1).expand(h, w).flatten()
        cols = torch.arange(w, device=x.device, dtype=exact).view(1, w).expand(h, w).flatten()
        ys, xs = rows + offsets[:, :, 0], cols + offsets[:, :, 1]  # (B, points, N) in feature positions
        sampled = sample_at(torch.cat([k, v], 1), ys.transpose(1, 2), xs.transpose(1, 2))  # (B, C, N, points)
        ks, vs = sampled.split([k.shape[1], v.shape[1]], dim=1)
        weights = torch.softmax(torch.einsum("bcn,bcnk->bnk", q.flatten(2), ks), dim=-1)
        o = torch.einsum("bnk,bcnk->bcn", weights, vs).view(b, -1, h, w)
        if not return_attention:
            return o, None
        return o, bilinear_map(weights.float(), ys.transpose(1, 2), xs.transpose(1, 2), h, w)


def bilinear_map(weights: torch.Tensor, y: torch.Tensor, x: torch.Tensor, h: int, w: int) -> torch.Tensor:
    """(B, N, h * w): each query's weights (B, N, K) on its K sampling points at (y, x), spread over the four
    positions around each point with grid_sample's bilinear weights; weight falling outside the map is dropped."""
    y0, x0 = y.floor(), x.floor()
    spread, keys = [], []
    for dy in (0, 1):
        for dx in (0, 1):
            cy, cx = y0 + dy, x0 + dx
            share = (1 - (y - cy).abs()) * (1 - (x - cx).abs())
            inside = (cy >= 0) & (cy < h) & (cx >= 0) & (cx < w)
            spread.append(weights * share)
            keys.append(torch.where(inside, cy * w + cx, -1).long())
    return dense_map(torch.cat(spread, -1), torch.cat(keys, -1), h * w)
