"""A dataset held in memory as one uint8 array, for the small sets stored as raw pixels (MNIST-like)."""

import copy

import numpy as np
import torch
from torch.utils.data import Dataset

from .transforms import center_box, convert_channels, resize_array, to_tensor


class ArrayDataset(Dataset):
    """In-memory images as `(image, label)` pairs: uint8 C x H x W tensors and python ints (0 without labels).

    Cropping and padding happen once here; resizing and channel conversion happen per item, so a large
    resolution or RGB output does not multiply the memory held.
    """

    def __init__(self, images: np.ndarray, labels: np.ndarray | None, *, resolution: int, channels: int,
                 crop: int = 0, num_classes: int, description: str, pad: bool = True):
        """`images` is uint8 N x H x W x C (C = 1 or 3); `crop` as in `load_image` (0: the largest square).

        With `pad`, 28x28 images asked for at 32x32 are zero-padded instead of resized.
        """
        _, height, width, _ = images.shape
        if crop or height != width:
            left, top, size = center_box(width, height, crop, f"the images of {description}")
            images = images[:, top : top + size, left : left + size]
        elif pad and (height, resolution) == (28, 32):
            # LeNet's MNIST convention: centre the 28x28 digits in 32x32 with zeros instead of resampling them.
            images = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
        self.images = images
        self.labels = labels
        self.resolution = resolution
        self.channels = channels
        self.num_classes = num_classes
        self.description = description

    def __len__(self) -> int:
        return len(self.images)

    def subset(self, indices: np.ndarray, description: str) -> "ArrayDataset":
        """The images at `indices`, in that order, as a dataset of their own (already cropped or padded)."""
        part = copy.copy(self)
        part.images = self.images[indices]
        part.labels = None if self.labels is None else self.labels[indices]
        part.description = description
        return part

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        image = self.images[index]
        if image.shape[0] != self.resolution:
            image = resize_array(image[None], self.resolution)[0]
        label = 0 if self.labels is None else int(self.labels[index])
        return to_tensor(convert_channels(image, self.channels)), label
