"""CIFAR-10 from its official python batches: cifar-10-batches-py/data_batch_1 ... 5 (train) and test_batch.

Each batch is a pickled dict (written by Python 2) of 10,000 images as a uint8 10000 x 3072 array, each row the
red, green and blue 32x32 planes, and their labels. The whole set is 180 MB in memory, so it is held as arrays.
"""

import os
import pickle
from pathlib import Path

import numpy as np
from torch.utils.data import Dataset

from ..errors import DataError, MissingPathError
from .arrays import ArrayDataset
from .options import describe, require_root

FOLDER = "cifar-10-batches-py"
BATCHES = {"train": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"]}
CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
SIDE = 32
SPLITS = (*BATCHES, "all")

# What a batch pickle may construct: numpy arrays, and bytes (Python 3 protocol-2 pickles encode them through
# _codecs). Anything else means the file is not a CIFAR batch, and loading it could run arbitrary code.
_ALLOWED = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}


class _BatchUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"it refers to {module}.{name}, which a CIFAR batch never holds")
        return super().find_class(module, name)


def read_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """The uint8 N x 32 x 32 x 3 images and N labels of one batch file."""
    try:
        with open(path, "rb") as f:
            batch = _BatchUnpickler(f, encoding="bytes").load()
    except FileNotFoundError:
        raise MissingPathError(f"missing CIFAR-10 batch {path}") from None
    except (OSError, EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError) as e:
        raise DataError(f"cannot read CIFAR-10 batch {path}: {e}") from None
    data = batch.get(b"data") if isinstance(batch, dict) else None
    labels = batch.get(b"labels") if isinstance(batch, dict) else None
    if (not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2
            or data.shape[1] != 3 * SIDE * SIDE or labels is None):
        raise DataError(f"{path} is not a CIFAR-10 python batch: expected a dict with b'data' (uint8 N x 3072) "
                        f"and b'labels'")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(data),):
        raise DataError(f"{path} holds {len(data)} images but {labels.size} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise DataError(f"{path} holds label {labels.max() if labels.max() >= len(CLASSES) else labels.min()}; "
                        f"expected 0 to {len(CLASSES) - 1}")
    return data.reshape(-1, 3, SIDE, SIDE).transpose(0, 2, 3, 1), labels


def find_folder(root: Path) -> Path:
    """The batches folder: root/cifar-10-batches-py, or root itself when it holds the batches."""
    if (root / FOLDER).is_dir():
        return root / FOLDER
    if (root / BATCHES["test"][0]).is_file() or (root / BATCHES["train"][0]).is_file():
        return root
    raise DataError(f"{root} has no {FOLDER}/ folder: expected the official CIFAR-10 python batches "
                    f"({FOLDER}/data_batch_1 ... data_batch_5, test_batch); sagan data download cifar10 fetches them")


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """The `split` ('train', 'test' or 'all') of CIFAR-10, with its 10 class labels."""
    folder = find_folder(require_root("cifar10", root))
    names = BATCHES["train"] + BATCHES["test"] if split == "all" else BATCHES[split]
    parts = [read_batch(folder / name) for name in names]
    images = np.concatenate([images for images, _ in parts])
    labels = np.concatenate([labels for _, labels in parts])
    return ArrayDataset(images, labels, resolution=resolution, channels=channels, crop=crop,
                        num_classes=len(CLASSES), description=describe("cifar10", split, len(images)))
