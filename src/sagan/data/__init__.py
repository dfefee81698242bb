"""Datasets for training and evaluation: `build(name, ...)` returns a torch Dataset of `(image, label)` pairs.

Every image is a uint8 tensor, channels x resolution x resolution; every label a python int (0 when the dataset
has none). Each dataset also has `num_classes` (0 when unlabelled) and a one-line `description`. A dataset format
is one module with a builder, registered in DATASETS with its splits and options; `data.name` takes its choices
from there.
"""

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from . import celeba, cifar, embedded, imagefolder, imagenet, lsun, mnist, places365, splits
from .arrays import ArrayDataset
from .cache import CachedDataset, cached
from .image_files import ImageFileDataset
from .options import require_split

__all__ = ["DATASETS", "OPTIONS", "ArrayDataset", "CachedDataset", "DatasetFormat", "ImageFileDataset", "build",
           "cached", "check_options", "from_config"]

# Options only some datasets take, with the value that means "not used".
OPTIONS = {"labels": "none", "attribute": "", "pad": True}


@dataclass(frozen=True)
class DatasetFormat:
    build: Callable[..., Dataset]  # (root, split, resolution, channels, crop, **the options it takes) -> Dataset
    splits: tuple[str, ...]
    options: tuple[str, ...] = ()  # keys of OPTIONS it takes
    needs_root: bool = True  # read from data.root (else shipped with sagan)


DATASETS: dict[str, DatasetFormat] = {
    "embedded": DatasetFormat(embedded.build, embedded.SPLITS, ("pad",), needs_root=False),
    "imagefolder": DatasetFormat(imagefolder.build, imagefolder.SPLITS, ("labels",)),
    "celeba": DatasetFormat(celeba.build, celeba.SPLITS, ("attribute",)),
    "mnist": DatasetFormat(partial(mnist.build, "mnist"), mnist.SPLITS, ("pad",)),
    "fashion-mnist": DatasetFormat(partial(mnist.build, "fashion-mnist"), mnist.SPLITS, ("pad",)),
    "cifar10": DatasetFormat(cifar.build, cifar.SPLITS),
    "lsun": DatasetFormat(lsun.build, lsun.SPLITS),
    "places365": DatasetFormat(places365.build, places365.SPLITS),
    "imagenet": DatasetFormat(imagenet.build, imagenet.SPLITS),
}


def check_options(name: str, split: str, options: dict, prefix: str = "data.", test_fraction: float = 0.0) -> None:
    """Raise a one-line error unless dataset `name` has `split` (with a `test_fraction`, one of splits.PARTS) and
    takes every option of `options` that is set."""
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose from {', '.join(DATASETS)}")
    if not 0 <= test_fraction < 1:
        raise ConfigError(f"{prefix}test_fraction: must be in [0, 1), got {test_fraction}")
    if test_fraction:
        require_split(f"{name} split by {prefix}test_fraction", split, splits.PARTS, f"{prefix}split")
    else:
        require_split(name, split, DATASETS[name].splits, f"{prefix}split")
    for key, value in options.items():
        if value != OPTIONS[key] and key not in DATASETS[name].options:
            users = [other for other, spec in DATASETS.items() if key in spec.options]
            raise ConfigError(f"{prefix}{key}={value} applies to {', '.join(users)}, not to {name}")


def build(name: str, root: str | os.PathLike | None = None, split: str = "train", resolution: int = 32,
          channels: int = 3, crop: int = 0, labels: str = "none", attribute: str = "", pad: bool = True,
          test_fraction: float = 0.0, split_seed: int = 0) -> Dataset:
    """The dataset `name` (a key of DATASETS) read from `root`.

    With `test_fraction` > 0, `split` is a part (train or test) of a seeded ratio split of all its images
    (`splits`), in place of the dataset's own splits.

    `crop` is the side of the centered square cut from each image before resizing it to `resolution`;
    0 means the dataset's default: 178 for CelebA, otherwise the largest square. `labels='folders'` numbers the
    first-level folders of an imagefolder as classes; `attribute` labels CelebA by one of its 40 attributes;
    `pad=False` resizes 28x28 MNIST-style digits to 32x32 instead of zero-padding them.
    """
    options = {"labels": labels, "attribute": attribute, "pad": pad}
    check_options(name, split, options, test_fraction=test_fraction)
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    if resolution < 1 or crop < 0:
        raise ConfigError(f"resolution must be positive and crop non-negative, not {resolution} and {crop}")
    given = {key: value for key, value in options.items() if value != OPTIONS[key]}
    whole = "all" if test_fraction else split
    dataset = DATASETS[name].build(root=root, split=whole, resolution=resolution, channels=channels, crop=crop, **given)
    return splits.split(dataset, name, split, test_fraction, split_seed) if test_fraction else dataset


def from_config(d) -> Dataset:
    """`build` with the fields of a DataConfig `d`: the one place that maps the config to a dataset, so training,
    `sagan data prepare` and `sagan data info` read the same images."""
    dataset = build(d.name, d.root, split=d.split, resolution=d.resolution, channels=d.channels, crop=d.crop,
                    labels=d.labels, attribute=d.attribute, pad=d.pad, test_fraction=d.test_fraction,
                    split_seed=d.split_seed)
    if isinstance(dataset, ImageFileDataset):
        dataset.strict = d.strict
    return dataset
