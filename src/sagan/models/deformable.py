"""Deformable convolution (DCNv2: Zhu, Hu, Lin and Dai 2019) and the bilinear sampling it shares with deformable
attention, in plain PyTorch (`grid_sample`, no torchvision)."""

import torch
import torch.nn.functional as F
from torch import nn


def sample_at(x: torch.Tensor, ys: torch.Tensor, xs: torch.Tensor) -> torch.Tensor:
    """x (B, C, H, W) sampled bilinearly at the feature positions (ys, xs), each (B, P, Q), zero outside the map:
    (B, C, P, Q). The positions stay in float32 at least: in bf16 they would step by 0.5 at 64."""
    exact = torch.promote_types(x.dtype, torch.float32)
    h, w = x.shape[-2:]
    grid = torch.stack([xs / max(w - 1, 1), ys / max(h - 1, 1)], -1) * 2 - 1
    return F.grid_sample(x.to(exact), grid.to(exact), align_corners=True).to(x.dtype)


class DeformConv2d(nn.Module):
    """A k x k, stride-1, 'same' convolution whose taps read the input at learned offsets, each tap's value scaled
    by a learned modulation: y(p) = sum_k w_k m_k(p) x(p + p_k + dp_k(p)) + b. A k x k convolution of the input
    gives every position its 2 k^2 offsets and k^2 modulations; its zero init makes a fresh layer the plain
    convolution (offsets 0, modulations 2 sigmoid(0) = 1; DCNv2's sigmoid alone would start at half)."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 3, bias: bool = True):
        super().__init__()
        if kernel % 2 == 0:
            raise ValueError(f"a deformable convolution needs an odd kernel, got {kernel}")
        self.in_channels, self.out_channels, self.kernel_size = in_ch, out_ch, (kernel, kernel)
        self.weight = nn.Parameter(torch.empty(out_ch, in_ch, kernel, kernel))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)  # nn.Conv2d's default; LayerFactory re-initialises it
        self.bias = nn.Parameter(torch.zeros(out_ch)) if bias else None
        # Plain, without spectral norm: offsets are positions, not features, and a zero weight has no norm.
        self.offsets = nn.Conv2d(in_ch, 3 * kernel * kernel, kernel, padding=kernel // 2)
        nn.init.zeros_(self.offsets.weight)
        nn.init.zeros_(self.offsets.bias)
        taps = torch.arange(kernel, dtype=torch.float32) - kernel // 2
        grid = torch.stack(torch.meshgrid(taps, taps, indexing="ij"), -1).view(-1, 2)  # (k^2, 2): dy, dx
        self.register_buffer("taps", grid, persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        taps = self.taps.shape[0]
        exact = torch.promote_types(x.dtype, torch.float32)
        with torch.autocast(x.device.type, enabled=False):
            predicted = self.offsets(x.to(exact))
        offsets = predicted[:, : 2 * taps].view(b, taps, 2, h, w)
        modulation = 2 * torch.sigmoid(predicted[:, 2 * taps :])  # (B, k^2, H, W)
        rows = torch.arange(h, device=x.device, dtype=exact).view(1, 1, h, 1)
        cols = torch.arange(w, device=x.device, dtype=exact).view(1, 1, 1, w)
        ys = rows + self.taps[:, 0].to(exact).view(1, -1, 1, 1) + offsets[:, :, 0]  # (B, k^2, H, W)
        xs = cols + self.taps[:, 1].to(exact).view(1, -1, 1, 1) + offsets[:, :, 1]
        sampled = sample_at(x, ys.flatten(1, 2), xs.flatten(1, 2)).view(b, -1, taps, h, w)  # (B, C, k^2, H, W)
        sampled = sampled * modulation.unsqueeze(1).to(sampled.dtype)
        y = torch.einsum("ock,bckhw->bohw", self.weight.flatten(2).to(sampled.dtype), sampled)
        return y if self.bias is None else y + self.bias.view(1, -1, 1, 1).to(y.dtype)
