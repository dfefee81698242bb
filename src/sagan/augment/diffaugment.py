"""DiffAugment (Zhao, Liu, Lin, Zhu and Han 2020, arXiv 2006.10738): differentiable color, translation and cutout
of every image D sees, real and fake, each image with its own random draw. The policies and their parameters are
those of the authors' DiffAugment_pytorch.py."""

import torch
import torch.nn.functional as F


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) - 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=1, keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) * 2) + mean


def contrast(x: torch.Tensor) -> torch.Tensor:
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - mean) * (torch.rand(x.shape[0], 1, 1, 1, dtype=x.dtype, device=x.device) + 0.5) + mean


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by up to `ratio` of its size in whole pixels, zeros coming in."""
    b, _, h, w = x.shape
    shift_y, shift_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = torch.randint(-shift_y, shift_y + 1, (b, 1, 1), device=x.device)
    dx = torch.randint(-shift_x, shift_x + 1, (b, 1, 1), device=x.device)
    batch, rows, cols = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(h, device=x.device),
                                       torch.arange(w, device=x.device), indexing="ij")
    rows = torch.clamp(rows + dy + 1, 0, h + 1)
    cols = torch.clamp(cols + dx + 1, 0, w + 1)
    padded = F.pad(x, [1, 1, 1, 1]).permute(0, 2, 3, 1)  # the zero border is what shifts in
    return padded[batch, rows, cols].permute(0, 3, 1, 2)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of `ratio` of each image's size at a random centre (clipped at the border)."""
    b, _, h, w = x.shape
    size_y, size_x = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + (1 - size_y % 2), (b, 1, 1), device=x.device)
    cx = torch.randint(0, w + (1 - size_x % 2), (b, 1, 1), device=x.device)
    batch, rows, cols = torch.meshgrid(torch.arange(b, device=x.device), torch.arange(size_y, device=x.device),
                                       torch.arange(size_x, device=x.device), indexing="ij")
    rows = torch.clamp(rows + cy - size_y // 2, 0, h - 1)
    cols = torch.clamp(cols + cx - size_x // 2, 0, w - 1)
    mask = torch.ones(b, h, w, dtype=x.dtype, device=x.device)
    mask[batch, rows, cols] = 0
    return x * mask.unsqueeze(1)


POLICIES = {"color": (brightness, saturation, contrast), "translation": (translation,), "cutout": (cutout,)}


def diff_augment(x: torch.Tensor, policy: str) -> torch.Tensor:
    """The comma-separated `policy` (keys of POLICIES, in that order) applied to the batch."""
    for name in policy.split(","):
        for transform in POLICIES[name]:
            x = transform(x)
    return x
