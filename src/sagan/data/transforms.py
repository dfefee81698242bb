"""Pixel operations shared by the datasets: decoding, center-cropping, resizing and channel conversion.

Images are uint8 NumPy arrays, height x width x channels (HWC), until `to_tensor` turns one into C x H x W.
"""

import os
import warnings
from typing import BinaryIO

import numpy as np
import torch
from PIL import Image, ImageOps

from ..errors import DataError

# Pillow's bicubic resize widens its filter when shrinking, so it antialiases; it is the resize the clean-fid
# reference uses for FID, and rings less than LANCZOS around hard edges such as MNIST strokes.
RESAMPLE = Image.Resampling.BICUBIC

# Bump whenever `load_image` may give other pixels for the same file: dataset caches made before are rebuilt.
PREPROCESSING_VERSION = 1

# Pillow clips these modes at 255 when converting to 8 bits instead of scaling them, which turns most pixels white.
# 16-bit PNG and TIFF files open as "I;16*"; 16-bit PGM files (and 16-bit PNGs in older Pillow versions) as "I".
_SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
_ALPHA_MODES = ("RGBA", "RGBa", "LA", "La", "PA")


class BadImageError(DataError):
    """One image that cannot be used: undecodable, truncated, not an image, too large, or smaller than the crop.

    Datasets skip such images (see `ImageFileDataset`) unless asked to be strict.
    """


def center_box(width: int, height: int, crop: int, what: str) -> tuple[int, int, int]:
    """Return (left, top, size) of the centered `crop` x `crop` square; crop=0 gives the largest one.

    Rounds the offset like torchvision's CenterCrop, so the common recipes give the same pixels.
    """
    size = crop or min(width, height)
    if size > min(width, height):
        raise DataError(f"crop {crop} is larger than {what} ({width}x{height})")
    return round((width - size) / 2), round((height - size) / 2), size


def load_image(source: str | os.PathLike | BinaryIO, resolution: int, channels: int, crop: int = 0,
               name: str | None = None) -> np.ndarray:
    """Decode an image file (a path or a binary file object) to a uint8 `resolution` x `resolution` x `channels` array.

    The image is turned upright by its EXIF orientation, converted to RGB (channels=3) or luma (channels=1),
    center-cropped to a `crop` x `crop` square (0: the largest one) and resized. Raises BadImageError, naming the
    image as `name` (default: the path), when it cannot be decoded. Images above Pillow's decompression-bomb
    limit (twice `PIL.Image.MAX_IMAGE_PIXELS`, 179 megapixels by default) are refused; those between the warning
    threshold and that limit are decoded without Pillow's warning.
    """
    name = name or str(source)
    # Newer Pillow versions repeat the size check in crop() too, hence the filter around both steps.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(source) as image:
                image = _convert(ImageOps.exif_transpose(image), "L" if channels == 1 else "RGB")
        except (OSError, SyntaxError, ValueError, EOFError, Image.DecompressionBombError) as e:
            raise BadImageError(f"cannot decode image {name}: {e or type(e).__name__}") from None
        try:
            left, top, size = center_box(*image.size, crop, f"image {name}")
        except DataError as e:
            raise BadImageError(str(e)) from None
        # Crop, then resize: resizing with `box=` would also sample pixels outside the crop.
        image = image.crop((left, top, left + size, top + size)).resize((resolution, resolution), RESAMPLE)
    return np.asarray(image).reshape(resolution, resolution, channels)


def _convert(image: Image.Image, mode: str) -> Image.Image:
    """Convert any Pillow image to `mode` ("RGB" or "L"), scaling 16-bit and float values, flattening transparency.

    16-bit values are scaled by 255/65535. Float ("F") images are read as 0 to 1 when no value exceeds 1 (the usual
    convention of float image files) and as 0 to 255 otherwise (Pillow's own convention).
    """
    if image.mode in _SIXTEEN_BIT_MODES or image.mode == "F":
        pixels = np.nan_to_num(np.asarray(image, dtype=np.float64))
        if image.mode != "F":
            pixels = pixels / 257
        elif pixels.max(initial=0) <= 1:
            pixels = pixels * 255
        image = Image.fromarray(np.clip(np.rint(pixels), 0, 255).astype(np.uint8))
    if image.mode in _ALPHA_MODES or "transparency" in image.info:
        # Transparent pixels keep arbitrary colours (often black or leftovers), so show them on white, as
        # viewers and browsers do.
        rgba = image.convert("RGBA")
        image = Image.alpha_composite(Image.new("RGBA", rgba.size, (255, 255, 255, 255)), rgba)
    return image.convert(mode)


def resize_array(images: np.ndarray, resolution: int) -> np.ndarray:
    """Resize uint8 NHWC images (C = 1 or 3) to `resolution` x `resolution`."""
    n, _, _, c = images.shape
    out = np.empty((n, resolution, resolution, c), dtype=np.uint8)
    for i, image in enumerate(images):
        pil = Image.fromarray(image[..., 0] if c == 1 else image)
        out[i] = np.asarray(pil.resize((resolution, resolution), RESAMPLE)).reshape(resolution, resolution, c)
    return out


def convert_channels(images: np.ndarray, channels: int) -> np.ndarray:
    """Convert uint8 ...HWC images between 1 and 3 channels: gray is repeated, RGB becomes ITU-R 601 luma."""
    if images.shape[-1] == channels:
        return images
    if channels == 3:
        return np.repeat(images, 3, axis=-1)
    # Pillow's fixed-point luma (L = 0.299 R + 0.587 G + 0.114 B, rounded), so arrays and files agree exactly.
    rgb = images.astype(np.uint32)
    luma = (rgb[..., 0] * 19595 + rgb[..., 1] * 38470 + rgb[..., 2] * 7471 + 0x8000) >> 16
    return luma.astype(np.uint8)[..., None]


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """Copy a uint8 HWC array into a new C x H x W tensor, so callers may modify it freely."""
    return torch.from_numpy(image.transpose(2, 0, 1).copy())
