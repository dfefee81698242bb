"""Any folder of images, searched recursively; the images have no labels."""

import os
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .image_files import ImageFileDataset
from .options import require_root

LABELS = ("none", "folders")  # data.labels: no labels, or the first-level folder of each image
EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
SPLITS = ("train", "all")  # a folder has no splits: both mean every image


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


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int,
          labels: str = "none") -> Dataset:
    """All images under `root`; a folder has no splits, so 'train' and 'all' both mean every image.

    With labels='folders' the first-level folders are the classes, numbered in sorted name order (the ImageNet
    layout DIR/n01440764/*.JPEG); images directly in `root` are then an error.
    """
    if labels not in LABELS:
        raise DataError(f"data.labels: '{labels}' is not one of {', '.join(LABELS)}")
    root = require_root("imagefolder", root)
    paths = find_images(root)
    if not paths:
        raise DataError(f"no images ({', '.join(EXTENSIONS)}) found under {root}")
    description = f"image folder {root}, {len(paths)} images"
    if labels == "none":
        return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop, description=description)
    folders = [path.relative_to(root).parts[0] if path.parent != root else None for path in paths]
    if None in folders:
        loose = paths[folders.index(None)]
        raise DataError(f"data.labels=folders needs every image inside a class folder of {root}, "
                        f"but {loose.name} is directly in it")
    classes = sorted(set(folders))
    empty = sorted(path.name for path in root.iterdir()
                   if path.is_dir() and not path.name.startswith(".") and path.name not in classes)
    if empty:
        raise DataError(f"data.labels=folders: class folder {root / empty[0]} holds no images")
    number = {name: i for i, name in enumerate(classes)}
    return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop,
                            description=f"{description} in {len(classes)} classes (folders {classes[0]} ... "
                                        f"{classes[-1]})",
                            labels=[number[folder] for folder in folders], num_classes=len(classes))
