"""A small real dataset shipped inside the package, so the library runs without downloading anything.

It is 20,000 Fashion-MNIST training images, 2,000 per class; assets/README.md says how it was made.
"""

import os
from pathlib import Path

from torch.utils.data import Dataset

from . import idx
from .arrays import ArrayDataset

ASSETS = Path(__file__).parent / "assets"
IMAGES_FILE = ASSETS / "fashion-mnist-subset-images-idx3-ubyte.xz"
LABELS_FILE = ASSETS / "fashion-mnist-subset-labels-idx1-ubyte.xz"
SPLITS = ("train", "all")  # both mean all of it


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int,
          pad: bool = True) -> Dataset:
    """The embedded set; `root` is ignored, and 'train' and 'all' both mean all of it."""
    images, labels = idx.read_images(IMAGES_FILE), idx.read_labels(LABELS_FILE)
    return ArrayDataset(images[..., None], labels, resolution=resolution, channels=channels, crop=crop, pad=pad,
                        num_classes=10, description=f"embedded Fashion-MNIST subset, {len(images)} images")
