"""A dataset of encoded images (files, or members of an archive), decoded when an item is read.

An image that cannot be used (`BadImageError`: corrupt, truncated, not an image, too large, smaller than the crop)
does not stop a run: its item is replaced by the next usable image, and a warning names the file and the reason,
once per process. With `strict=True` the error is raised instead. Preparing a cache (`sagan.data.cache`) decodes
every image once, up front, so it finds them all before training starts and leaves them out.
"""

import hashlib
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


class ArchiveMembers(Sequence[BinaryIO]):
    """What ImageFileDataset needs of the lazy sequence of an archive's images (a zip, an lmdb database).

    Item i is an open binary file; reading one may raise the archive's own errors, which make that image unusable.
    `name` names an item (in messages) without reading it; `fingerprint` lets the dataset cache notice a changed
    archive.
    """

    def name(self, index: int) -> str:
        """How messages name member `index`, without reading it, e.g. 'img_align_celeba.zip:000001.jpg'."""
        raise NotImplementedError

    def fingerprint(self) -> str:
        """A string that changes whenever the archive may have changed (e.g. its path, size and modification time)."""
        raise NotImplementedError


class SelectedMembers(ArchiveMembers):
    """Some members of an archive, by index: the part of a split (`ImageFileDataset.subset`)."""

    def __init__(self, members: ArchiveMembers, indices: Sequence[int]):
        self.members, self.indices = members, list(indices)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int) -> BinaryIO:
        return self.members[self.indices[index]]

    def name(self, index: int) -> str:
        return self.members.name(self.indices[index])

    def fingerprint(self) -> str:
        return self.members.fingerprint()


class ImageFileDataset(Dataset):
    """Image files as `(image, label)` pairs: uint8 `channels` x `resolution` x `resolution` tensors and python ints
    (0 without labels)."""

    def __init__(self, paths: Sequence[Path] | ArchiveMembers, *, resolution: int, channels: int, crop: int,
                 description: str, labels: Sequence[int] | None = None, num_classes: int = 0, strict: bool = False):
        """`crop` as in `load_image`: the side of the centered square cut before resizing (0: the largest).
        `paths` may also be a lazy sequence of an archive's members (see ArchiveMembers), which is kept as given.
        `strict`: raise BadImageError for an unusable image instead of skipping it."""
        if labels is not None and len(labels) != len(paths):
            raise ValueError(f"{len(paths)} images but {len(labels)} labels")
        self.paths = paths if isinstance(paths, ArchiveMembers) else list(paths)
        self.labels = labels
        self.num_classes = num_classes
        self.resolution = resolution
        self.channels = channels
        self.crop = crop
        self.description = description
        self.strict = strict
        self.skipped: dict[str, str] = {}  # name -> reason, for the unusable images met in this process

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices: Sequence[int], description: str) -> "ImageFileDataset":
        """The images at `indices`, in that order, as a dataset of their own."""
        paths = (SelectedMembers(self.paths, indices) if isinstance(self.paths, ArchiveMembers)
                 else [self.paths[i] for i in indices])
        labels = None if self.labels is None else [self.labels[i] for i in indices]
        return ImageFileDataset(paths, resolution=self.resolution, channels=self.channels, crop=self.crop,
                                description=description, labels=labels, num_classes=self.num_classes,
                                strict=self.strict)

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
        """How messages name item `index`: its path, or what its archive calls it."""
        if isinstance(self.paths, ArchiveMembers):
            return self.paths.name(index)
        return str(self.paths[index])

    def label(self, index: int) -> int:
        return 0 if self.labels is None else int(self.labels[index])

    def load(self, index: int) -> np.ndarray:
        """The uint8 H x W x C pixels of item `index`; raises BadImageError when the image is unusable."""
        try:
            source = self.paths[index]
        # An archive reader raises its own error types (zipfile.BadZipFile, zlib.error, lmdb.Error, DataError, ...).
        except Exception as e:  # noqa: BLE001
            raise BadImageError(f"cannot read {self.name(index)}: {e}") from None
        return load_image(source, self.resolution, self.channels, self.crop, name=self.name(index))

    def fingerprint(self) -> str:
        """A hash that changes whenever the images or labels may have changed: for files, their paths, sizes and
        modification times; for an archive, its own fingerprint."""
        digest = hashlib.sha256()
        if isinstance(self.paths, ArchiveMembers):
            digest.update(self.paths.fingerprint().encode())
        else:
            for path in self.paths:
                try:
                    stat = os.stat(path)
                    digest.update(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}\n".encode())
                except OSError:
                    digest.update(f"{path}\0unreadable\n".encode())
        if self.labels is not None:
            digest.update(np.asarray(self.labels, dtype=np.int64).tobytes())
        return digest.hexdigest()

    def _skip(self, index: int, error: BadImageError) -> None:
        name = self.name(index)
        if name not in self.skipped:
            self.skipped[name] = str(error)
            log.warning(f"skipped: {error}")
