"""MNIST and Fashion-MNIST from their four official IDX files, stored directly in the data root."""

import os
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..errors import DataError, MissingPathError
from . import idx
from .arrays import ArrayDataset
from .options import describe, require_root

NUM_CLASSES = 10
_PREFIXES = {"train": "train", "test": "t10k"}  # the official file name prefix of each split
SPLITS = (*_PREFIXES, "all")


def read_split(root: Path, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 N x 28 x 28 images and N labels of the 'train' or 'test' files in `root`."""
    images_path = _find(root, f"{_PREFIXES[split]}-images-idx3-ubyte")
    labels_path = _find(root, f"{_PREFIXES[split]}-labels-idx1-ubyte")
    images, labels = idx.read_images(images_path), idx.read_labels(labels_path)
    if len(images) != len(labels):
        raise DataError(f"{images_path} holds {len(images)} images but {labels_path} holds {len(labels)} labels")
    if labels.max(initial=0) >= NUM_CLASSES:
        raise DataError(f"{labels_path} holds label {labels.max()}; expected 0 to {NUM_CLASSES - 1}")
    return images, labels


def _find(root: Path, stem: str) -> Path:
    """The gzipped file as published, or the same file un-gzipped."""
    for path in (root / f"{stem}.gz", root / stem):
        if path.is_file():
            return path
    raise MissingPathError(f"missing {root / stem}.gz (or the un-gzipped {stem})")


def build(name: str, root: str | os.PathLike | None, split: str, resolution: int, channels: int,
          crop: int, pad: bool = True) -> Dataset:
    """The `split` ('train', 'test' or 'all') of the MNIST-format dataset `name` found in `root`."""
    root = require_root(name, root)
    parts = [read_split(root, part) for part in (_PREFIXES if split == "all" else [split])]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return ArrayDataset(images[..., None], labels, resolution=resolution, channels=channels, crop=crop, pad=pad,
                        num_classes=NUM_CLASSES, description=describe(name, split, len(images)))
