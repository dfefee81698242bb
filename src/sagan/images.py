"""Converting generator output to uint8 images, tiling grids and writing PNGs (Pillow + NumPy, no torchvision)."""

import io
import math
import os

import numpy as np
import torch
from PIL import Image

from .files import atomic_write_bytes


def to_uint8(x: torch.Tensor) -> np.ndarray:
    """Map NCHW values in [-1, 1] to uint8 NHWC.

    Rounds half up, `floor(clamp(127.5 * x + 128, 0, 255))`, the quantisation the standard FID / IS code applies
    to generator output, so saved images and metric inputs are the same pixels.
    """
    x = (127.5 * x.detach().float() + 128).clamp(0, 255).floor().to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def make_grid(images: np.ndarray, nrow: int | None = None, padding: int = 2, pad_value: int = 0) -> np.ndarray:
    """Tile uint8 NHWC images into one HWC image, `nrow` images per row (default: a square), padded between
    and around the tiles."""
    n, h, w, c = images.shape
    nrow = nrow or math.ceil(math.sqrt(n))
    rows = math.ceil(n / nrow)
    grid = np.full((rows * (h + padding) + padding, nrow * (w + padding) + padding, c), pad_value, dtype=np.uint8)
    for i, image in enumerate(images):
        top = padding + (i // nrow) * (h + padding)
        left = padding + (i % nrow) * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid


def save_png(image: np.ndarray, path: str | os.PathLike) -> None:
    """Write one uint8 HWC image (C = 1 or 3) as a PNG, atomically."""
    buffer = io.BytesIO()
    Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(buffer, format="PNG")
    atomic_write_bytes(path, buffer.getvalue())
