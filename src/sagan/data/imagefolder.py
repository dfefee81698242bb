"""Any folder of images, searched recursively; the images have no labels."""

import os
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .image_files import ImageFileDataset
from .options import require_root, require_split

EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")


def find_images(root: Path) -> list[Path]:
    """Image files under `root` by extension (any case), in sorted order so runs see the same dataset.

    Hidden files and folders are skipped: they hold thumbnails and macOS "._" metadata, not images.
    """
    return sorted(
        path for path in root.rglob("*")
        if path.suffix.lower() in EXTENSIONS
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
        and path.is_file()
    )


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """All images under `root`; a folder has no splits, so 'train' and 'all' both mean every image."""
    require_split("imagefolder", split, ("train", "all"))
    root = require_root("imagefolder", root)
    paths = find_images(root)
    if not paths:
        raise DataError(f"no images ({', '.join(EXTENSIONS)}) found under {root}")
    return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop,
                            description=f"image folder {root}, {len(paths)} images")
