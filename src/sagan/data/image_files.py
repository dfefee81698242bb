"""A dataset of encoded images (files, or members of an archive), decoded when an item is read.

An image that cannot be used (`BadImageError`: corrupt, truncated, not an image, too large, smaller than the crop)
does not stop a run: its item is replaced by the next usable image, and a warning names the file and the reason,
once per process. With `strict=True` the error is raised instead. Preparing a cache (`sagan.data.cache`) decodes
every image once, up front, so it finds them all before training starts and leaves them out.
"""

import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch.utils.data import Dataset

from ..errors import DataError
from .transforms import BadImageError, load_image, to_tensor

log = logging.getLogger("sagan.data")

# This many unusable images in a row means a broken dataset (or a crop larger than the images), not bad luck.
MAX_CONSECUTIVE_BAD = 100


class ImageFileDataset(Dataset):
    """Image files as `(image, label)` pairs: uint8 `channels` x `resolution` x `resolution` tensors and python ints
    (0 without labels).

    Subclasses that read the images from an archive override `open` (the bytes of an item) and `source_id` (what
    identifies those bytes for the cache); `paths` then holds the item names.
    """

    def __init__(self, paths: Sequence[Path], *, resolution: int, channels: int, crop: int, description: str,
                 labels: Sequence[int] | np.ndarray | None = None, num_classes: int = 0, strict: bool = False):
        """`crop` as in `load_image`: the side of the centered square cut before resizing (0: the largest).
        `strict`: raise BadImageError for an unusable image instead of skipping it."""
        self.paths = list(paths)
        self.labels = None if labels is None else np.asarray(labels, dtype=np.int64)
        if self.labels is not None and len(self.labels) != len(self.paths):
            raise ValueError(f"{len(self.paths)} images but {len(self.labels)} labels")
        self.resolution = resolution
        self.channels = channels
        self.crop = crop
        self.description = description
        self.num_classes = num_classes
        self.strict = strict
        self.skipped: dict[str, str] = {}  # name -> reason, of the unusable images met in this process

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        for offset in range(min(MAX_CONSECUTIVE_BAD, len(self))):
            usable = (index + offset) % len(self)
            try:
                return to_tensor(self.load(usable)), self.label(usable)
            except BadImageError as e:
                if self.strict:
                    raise
                self._skip(usable, e)
                error = e
        raise DataError(f"{self.description}: the {offset + 1} images from {self.name(index)} on are all unusable; "
                        f"the last: {error}")

    def name(self, index: int) -> str:
        """How messages name item `index`."""
        return str(self.paths[index])

    def open(self, index: int) -> str | os.PathLike | BinaryIO:
        """The encoded image `index`: a path or a binary file object, as `PIL.Image.open` takes."""
        return self.paths[index]

    def source_id(self, index: int) -> str:
        """A string that changes whenever the bytes of item `index` may have changed: path, size, modification time."""
        try:
            stat = os.stat(self.paths[index])
        except OSError:
            return f"{self.paths[index]} unreadable"
        return f"{self.paths[index]} {stat.st_size} {stat.st_mtime_ns}"

    def label(self, index: int) -> int:
        return 0 if self.labels is None else int(self.labels[index])

    def load(self, index: int) -> np.ndarray:
        """The uint8 H x W x C pixels of item `index`; raises BadImageError when the image is unusable."""
        try:
            source = self.open(index)
        except (OSError, KeyError, ValueError) as e:
            raise BadImageError(f"cannot read image {self.name(index)}: {e}") from None
        return load_image(source, self.resolution, self.channels, self.crop, name=self.name(index))

    def _skip(self, index: int, error: BadImageError) -> None:
        name = self.name(index)
        if name not in self.skipped:
            self.skipped[name] = str(error)
            log.warning(f"skipped: {error}")
