"""Image preprocessing in front of the FID Inception network: resize to 299x299, then scale to [-1, 1].

Two pipelines, and statistics made by one must never be compared with the other's:
- "tf1" (TTUR / torch-fidelity, the published-FID protocol): TensorFlow 1.x `resize_bilinear` without half-pixel
  centres, i.e. output pixel i samples input coordinate `i * in / out` (not what `F.interpolate` does).
- "clean" (clean-fid): PIL bicubic on each channel as float32, clipped to [0, 255].
Both then map x to (x - 128) / 128, as the TF graph (and clean-fid's wrapper) do.
"""

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

RESIZE_MODES = ("tf1", "clean")


def resize_tf1_bilinear(x: torch.Tensor, size: int) -> torch.Tensor:
    """Bilinear resize of float N x C x H x W to size x size the way TF 1.x `resize_bilinear` does
    (align_corners=False, no half-pixel offset).

    Each output value is computed with the operations of torch-fidelity's `interpolate_bilinear_2d_like_tensorflow1x`
    in the same order (across x, then y), so the result matches it bit for bit; interpolating across x before
    picking rows only avoids recomputing the same rows.
    """
    h, w = x.shape[-2:]
    y_lo, y_hi, dy = _tf1_grid(h, size, x.device)
    x_lo, x_hi, dx = _tf1_grid(w, size, x.device)
    left = x[..., x_lo]
    across = left + (x[..., x_hi] - left) * dx
    top = across[..., y_lo, :]
    return top + (across[..., y_hi, :] - top) * dy.view(-1, 1)


def _tf1_grid(in_size: int, out_size: int, device) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Source indices below and above each output pixel and the weight of the one above."""
    src = torch.arange(out_size, dtype=torch.float32, device=device) * torch.tensor(in_size / out_size,
                                                                                  dtype=torch.float32)
    lo = src.long()
    hi = (lo + 1).clamp_max(in_size - 1)
    return lo, hi, src - lo.float()


def resize_clean_bicubic(x: torch.Tensor, size: int) -> torch.Tensor:
    """clean-fid's resize: each channel as a float32 PIL image, bicubic to size x size, clipped to [0, 255]."""
    channels = x.detach().float().cpu().numpy()
    out = np.empty((*channels.shape[:2], size, size), dtype=np.float32)
    for i, image in enumerate(channels):
        for c, channel in enumerate(image):
            resized = Image.fromarray(channel, mode="F").resize((size, size), resample=Image.BICUBIC)
            out[i, c] = np.asarray(resized).clip(0, 255)
    return torch.from_numpy(out).to(x.device)


def preprocess(images: torch.Tensor, mode: str, size: int) -> torch.Tensor:
    """uint8 N x 3 x H x W -> float32 N x 3 x size x size in [-1, 1] by the named pipeline."""
    x = images.float()
    if x.shape[-2:] != (size, size):
        x = resize_tf1_bilinear(x, size) if mode == "tf1" else resize_clean_bicubic(x, size)
    return (x - 128) / 128


def resize_antialiased(images: torch.Tensor, size: int, device) -> torch.Tensor:
    """uint8 N x C x H x W (C = 1 or 3) as float RGB in [0, 255] at size x size: antialiased bilinear, as
    torchvision's Resize on tensors, the input of the ImageNet classifiers (VGG16, EfficientNet-Lite0)."""
    x = images.to(device).float().expand(-1, 3, -1, -1)
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    return x
