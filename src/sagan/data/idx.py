"""The IDX format of the MNIST and Fashion-MNIST files: a big-endian header, then raw uint8 values.

The header is a magic number, 0x08 (unsigned bytes) in its third byte and the number of dimensions in its
fourth, then one 32-bit size per dimension. Files may be gzip (.gz), xz (.xz) or uncompressed.
"""

import gzip
import lzma
import math
import os
from pathlib import Path

import numpy as np

from ..errors import DataError

IMAGES_MAGIC = 2051  # 0x0803: unsigned bytes, 3 dimensions (count, rows, columns)
LABELS_MAGIC = 2049  # 0x0801: unsigned bytes, 1 dimension (count)


def read_images(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX image file as a uint8 N x H x W array."""
    return _read(Path(path), IMAGES_MAGIC, "image")


def read_labels(path: str | os.PathLike) -> np.ndarray:
    """Read an IDX label file as a uint8 array of N labels."""
    return _read(Path(path), LABELS_MAGIC, "label")


def encode(array: np.ndarray) -> bytes:
    """The uncompressed IDX bytes of a uint8 array (the inverse of the readers)."""
    header = (0x0800 + array.ndim).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in array.shape)
    return header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def _read(path: Path, magic: int, kind: str) -> np.ndarray:
    opener = {".gz": gzip.open, ".xz": lzma.open}.get(path.suffix, open)
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError, lzma.LZMAError) as e:
        raise DataError(f"cannot read {path}: {e}") from None
    found = int.from_bytes(data[:4], "big")
    if found != magic:
        raise DataError(f"{path} is not an IDX {kind} file: its magic number is {found}, expected {magic}")
    ndim = magic & 0xFF
    offset = 4 + 4 * ndim
    shape = tuple(int.from_bytes(data[i : i + 4], "big") for i in range(4, offset, 4))
    if len(data) != offset + math.prod(shape):
        raise DataError(f"{path} holds {len(data)} bytes, but its header promises {offset + math.prod(shape)} "
                        f"({' x '.join(map(str, shape))} values); the file is truncated or corrupt")
    return np.frombuffer(data, dtype=np.uint8, offset=offset).reshape(shape)
