"""Datasets for training and evaluation: `build(name, ...)` returns a torch Dataset of `(image, label)` pairs.

Every image is a uint8 tensor, channels x resolution x resolution; every label a python int (0 when the dataset
has none). Each dataset also has `num_classes` (0 when unlabelled) and a one-line `description`.
"""

import inspect
import os
from collections.abc import Callable
from functools import partial

from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from . import celeba, cifar, embedded, imagefolder, lsun, mnist
from .arrays import ArrayDataset
from .cache import CachedDataset, cached
from .image_files import ImageFileDataset

__all__ = ["DATASETS", "ArrayDataset", "CachedDataset", "ImageFileDataset", "build", "cached", "from_config"]

# name -> builder(root, split, resolution, channels, crop, **the OPTIONS it supports)
DATASETS: dict[str, Callable[..., Dataset]] = {
    "embedded": embedded.build,
    "imagefolder": imagefolder.build,
    "celeba": celeba.build,
    "mnist": partial(mnist.build, "mnist"),
    "fashion-mnist": partial(mnist.build, "fashion-mnist"),
    "cifar10": cifar.build,
    "lsun": lsun.build,
}

# Options only some datasets take, with the value that means "not used"; a builder takes those it supports as
# keyword arguments.
OPTIONS = {"labels": "none", "attribute": "", "pad": True}


def build(name: str, root: str | os.PathLike | None = None, split: str = "train", resolution: int = 32,
          channels: int = 3, crop: int = 0, labels: str = "none", attribute: str = "", pad: bool = True) -> Dataset:
    """The dataset `name` (a key of DATASETS) read from `root`.

    `crop` is the side of the centered square cut from each image before resizing it to `resolution`;
    0 means the dataset's default: 178 for CelebA, otherwise the largest square. `labels='folders'` numbers the
    first-level folders of an imagefolder as classes; `attribute` labels CelebA by one of its 40 attributes;
    `pad=False` resizes 28x28 MNIST-style digits to 32x32 instead of zero-padding them.
    """
    if name not in DATASETS:
        raise DataError(f"unknown dataset '{name}'; choose from {', '.join(DATASETS)}")
    if channels not in (1, 3):
        raise ConfigError(f"channels must be 1 (grayscale) or 3 (RGB), not {channels}")
    if resolution < 1 or crop < 0:
        raise ConfigError(f"resolution must be positive and crop non-negative, not {resolution} and {crop}")
    given = {key: value for key, value in dict(labels=labels, attribute=attribute, pad=pad).items()
             if value != OPTIONS[key]}
    accepted = inspect.signature(DATASETS[name]).parameters
    for key, value in given.items():
        if key not in accepted:
            users = [other for other, builder in DATASETS.items() if key in inspect.signature(builder).parameters]
            raise ConfigError(f"data.{key}={value} applies to {', '.join(users)}, not to {name}")
    return DATASETS[name](root=root, split=split, resolution=resolution, channels=channels, crop=crop, **given)


def from_config(d) -> Dataset:
    """`build` with the fields of a DataConfig `d`: the one place that maps the config to a dataset, so training,
    `sagan data prepare` and `sagan data info` read the same images."""
    dataset = build(d.name, d.root, split=d.split, resolution=d.resolution, channels=d.channels, crop=d.crop,
                    labels=d.labels, attribute=d.attribute, pad=d.pad)
    if isinstance(dataset, ImageFileDataset):
        dataset.strict = d.strict
    return dataset
