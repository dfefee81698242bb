"""Composing labelled pictures from uint8 HWC arrays with Pillow: upscaling, captions, rows and columns."""

import numpy as np
from PIL import Image, ImageDraw, ImageFont

WHITE, BLACK = (255, 255, 255), (0, 0, 0)
# Distinct, colour-blind-friendly colours (Okabe & Ito) for marked points and their legends.
PALETTE = [(213, 94, 0), (0, 114, 178), (0, 158, 115), (240, 228, 66), (204, 121, 167), (86, 180, 233),
           (230, 159, 0), (255, 255, 255)]


def font(size: int = 14) -> ImageFont.ImageFont:
    """Pillow's bundled font; a scalable one where Pillow has FreeType (>= 10.1), else its small bitmap font."""
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, ImportError, OSError):
        return ImageFont.load_default()


def rgb(image: np.ndarray) -> np.ndarray:
    """HWC uint8 with 3 channels (grayscale repeated)."""
    return np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """Nearest-neighbour enlargement, so small images stay sharp and pixels stay where they were."""
    return image.repeat(factor, axis=0).repeat(factor, axis=1) if factor > 1 else image


def readable_scale(size: int, target: int = 128) -> int:
    """The integer factor that brings a `size`-pixel image to at least about `target` pixels."""
    return max(1, -(-target // size))


def label(text: str, width: int = 0, color=BLACK, size: int = 14) -> np.ndarray:
    """A white bar with `text` (lines split at newlines) centred in it, at least `width` pixels wide."""
    f = font(size)
    lines = text.split("\n")
    line_height = size + 4
    width = max(width, *(int(f.getlength(line)) + 8 for line in lines))
    bar = Image.new("RGB", (width, line_height * len(lines) + 4), WHITE)
    draw = ImageDraw.Draw(bar)
    for i, line in enumerate(lines):
        draw.text(((width - f.getlength(line)) / 2, 2 + i * line_height), line, fill=color, font=f)
    return np.asarray(bar)


def caption(image: np.ndarray, text: str, color=BLACK, size: int = 14) -> np.ndarray:
    """`image` under a `label`."""
    return stack([label(text, image.shape[1], color, size), image], axis=0, gap=0)


def stack(images: list[np.ndarray], axis: int = 1, gap: int = 8, background=WHITE) -> np.ndarray:
    """Place images side by side (axis 1) or one under another (axis 0), centred across, `gap` pixels apart."""
    images = [rgb(image) for image in images]
    across = 1 - axis
    size = max(image.shape[across] for image in images)
    length = sum(image.shape[axis] for image in images) + gap * (len(images) - 1)
    shape = (length, size, 3) if axis == 0 else (size, length, 3)
    out = np.empty(shape, np.uint8)
    out[:] = background
    at = 0
    for image in images:
        offset = (size - image.shape[across]) // 2
        if axis == 0:
            out[at : at + image.shape[0], offset : offset + image.shape[1]] = image
        else:
            out[offset : offset + image.shape[0], at : at + image.shape[1]] = image
        at += image.shape[axis] + gap
    return out


def margin(image: np.ndarray, pixels: int = 8, background=WHITE) -> np.ndarray:
    """`image` with a border of `pixels` on every side."""
    out = np.empty((image.shape[0] + 2 * pixels, image.shape[1] + 2 * pixels, 3), np.uint8)
    out[:] = background
    out[pixels:-pixels, pixels:-pixels] = rgb(image)
    return out


def mark(image: np.ndarray, points: list[tuple[float, float]], colors: list[tuple[int, int, int]],
         radius: int = 4) -> np.ndarray:
    """Draw a filled dot with a black-and-white ring at each (y, x) pixel position."""
    canvas = Image.fromarray(rgb(image).copy())
    draw = ImageDraw.Draw(canvas)
    for (y, x), color in zip(points, colors):
        draw.ellipse([x - radius - 1, y - radius - 1, x + radius + 1, y + radius + 1], fill=BLACK)
        draw.ellipse([x - radius, y - radius, x + radius, y + radius], fill=color, outline=WHITE)
    return np.asarray(canvas)
