"""CelebA in its official layout: root/img_align_celeba/*.jpg (178x218) and root/list_eval_partition.txt."""

import os
from collections import Counter
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .image_files import ImageFileDataset
from .options import describe, require_root, require_split

IMAGE_FOLDER = "img_align_celeba"
PARTITION_FILE = "list_eval_partition.txt"
PARTITIONS = {"train": 0, "valid": 1, "test": 2}  # the numbers list_eval_partition.txt gives each split
# The common recipe: a 178x178 square, the full image width, centred on the aligned face, keeps the whole face
# and resizes it without distortion.
DEFAULT_CROP = 178
_LAYOUT = f"expected the official CelebA layout: {IMAGE_FOLDER}/ and {PARTITION_FILE}"


def read_partition(path: Path) -> list[tuple[str, int]]:
    """The (image name, partition number) rows of list_eval_partition.txt, in file order."""
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or fields[1] not in ("0", "1", "2"):
            raise DataError(f"{path}, line {number}: expected '<image name> <0|1|2>', found {line.strip()!r}")
        rows.append((fields[0], int(fields[1])))
    return rows


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """The `split` ('train', 'valid', 'test' or 'all') of CelebA; crop=0 means the 178 px default."""
    require_split("celeba", split, (*PARTITIONS, "all"))
    root = require_root("celeba", root)
    folder, partition_path = root / IMAGE_FOLDER, root / PARTITION_FILE
    if not folder.is_dir():
        raise DataError(f"{root} has no {IMAGE_FOLDER}/ folder: {_LAYOUT}")
    if not partition_path.is_file():
        raise DataError(f"{root} has no {PARTITION_FILE}: {_LAYOUT}")
    rows = read_partition(partition_path)
    names = [name for name, part in rows if split == "all" or part == PARTITIONS[split]]
    if not names:
        counts = Counter(part for _, part in rows)
        found = ", ".join(f"{counts[number]} {name}" for name, number in PARTITIONS.items())
        raise DataError(f"no {split} images in {root}: {partition_path} lists {found} images")
    present = set(os.listdir(folder))
    missing = [name for name in names if name not in present]
    if missing:
        raise DataError(f"{len(missing)} of the {len(names)} images that {partition_path} lists for this split "
                        f"are missing from {folder}, the first being {missing[0]}")
    return ImageFileDataset([folder / name for name in names], resolution=resolution, channels=channels,
                            crop=crop or DEFAULT_CROP, description=describe("celeba", split, len(names)))
