"""Build the embedded dataset, src/sagan/data/assets/fashion-mnist-subset-*-ubyte.xz, from Fashion-MNIST.

Usage: python scripts/build_embedded_dataset.py [FASHION_MNIST_DIR]   (default: ../shared/data/fashion-mnist)

Keeps the first PER_CLASS training images of each class, in their original order, and writes them and their
labels as xz-compressed IDX files. The output depends only on the input files, byte for byte.
Needs the sagan package importable (pip install -e . or PYTHONPATH=src).
"""

import lzma
import sys
from pathlib import Path

import numpy as np

from sagan.data import embedded, idx, mnist

PER_CLASS = 2000  # 20,000 images: about 7.5 MB compressed, under the package's 8 MB budget
DEFAULT_SOURCE = Path(__file__).resolve().parents[2] / "shared" / "data" / "fashion-mnist"


def select(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` images of each class, in increasing order."""
    keep = np.concatenate([np.flatnonzero(labels == c)[:per_class] for c in range(mnist.NUM_CLASSES)])
    return np.sort(keep)


def main(argv: list[str]) -> None:
    source = Path(argv[0]) if argv else DEFAULT_SOURCE
    images, labels = mnist.read_split(source, "train")
    keep = select(labels, PER_CLASS)
    for path, array in ((embedded.IMAGES_FILE, images[keep]), (embedded.LABELS_FILE, labels[keep])):
        path.write_bytes(lzma.compress(idx.encode(array), preset=9 | lzma.PRESET_EXTREME))
        print(f"{path}: {array.shape}, {path.stat().st_size:,} bytes")


if __name__ == "__main__":
    main(sys.argv[1:])
