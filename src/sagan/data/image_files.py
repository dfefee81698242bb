"""A dataset of image files, decoded when an item is read, for sets too large to hold in memory."""

from collections.abc import Sequence
from pathlib import Path

import torch
from torch.utils.data import Dataset

from .transforms import load_image, to_tensor


class ImageFileDataset(Dataset):
    """Unlabelled image files as `(image, 0)` pairs: uint8 `channels` x `resolution` x `resolution` tensors."""

    num_classes = 0

    def __init__(self, paths: Sequence[Path], *, resolution: int, channels: int, crop: int, description: str):
        """`crop` as in `load_image`: the side of the centered square cut before resizing (0: the largest)."""
        self.paths = list(paths)
        self.resolution = resolution
        self.channels = channels
        self.crop = crop
        self.description = description

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return to_tensor(load_image(self.paths[index], self.resolution, self.channels, self.crop)), 0
