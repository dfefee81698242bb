"""A dataset of image files, decoded when an item is read, for sets too large to hold in memory."""

from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import torch
from torch.utils.data import Dataset

from .transforms import load_image, to_tensor


class ImageFileDataset(Dataset):
    """Image files as `(image, label)` pairs: uint8 `channels` x `resolution` x `resolution` tensors and ints
    (0 without labels)."""

    def __init__(self, paths: Sequence[Path | BinaryIO], *, resolution: int, channels: int, crop: int,
                 description: str, labels: Sequence[int] | None = None, num_classes: int = 0):
        """`crop` as in `load_image`: the side of the centered square cut before resizing (0: the largest).

        `paths` may also be a lazy sequence of open image files (members of a zip or lmdb archive); it is kept
        as given, not copied into a list.
        """
        self.paths = paths
        self.labels = labels
        self.num_classes = num_classes
        self.resolution = resolution
        self.channels = channels
        self.crop = crop
        self.description = description

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        label = 0 if self.labels is None else int(self.labels[index])
        return to_tensor(load_image(self.paths[index], self.resolution, self.channels, self.crop)), label
