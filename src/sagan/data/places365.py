"""Places365-Standard as published (http://places2.csail.mit.edu): the unpacked image tars and the file lists.

    root/places365_train_standard.txt   "/a/airfield/00000001.jpg 0" per line (filelist_places365-standard.tar)
    root/places365_val.txt              "Places365_val_00000001.jpg 165" per line
    root/categories_places365.txt       "/a/airfield 0" per line: the 365 classes in their published order
    root/data_256/a/airfield/...        train images, 256x256 (train_256_places365standard.tar), or
    root/data_large/a/airfield/...      the large ones (train_large_places365standard.tar, short side >= 512)
    root/val_256/Places365_val_*.jpg    validation images (val_256.tar), or root/val_large/ (val_large.tar)

Every image has one of the 365 labels; an unconditional model ignores them. The 256x256 images are read when both
sizes are there (training resolutions are at most 256).
"""

import os
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .image_files import ImageFileDataset
from .options import describe, require_root

SPLITS = ("train", "val", "all")
CATEGORIES = "categories_places365.txt"
LISTS = {"train": "places365_train_standard.txt", "val": "places365_val.txt"}
FOLDERS = {"train": ("data_256", "data_large"), "val": ("val_256", "val_large")}
NUM_CLASSES = 365
_LAYOUT = (f"expected Places365-Standard as published: {CATEGORIES}, {LISTS['train']} and {LISTS['val']} (from "
           "filelist_places365-standard.tar) beside the unpacked data_256/ and val_256/ (or data_large/, val_large/)")


def read_list(path: Path, what: str) -> list[tuple[str, int]]:
    """The (name, class number) rows of a Places365 list file, each class in 0..364."""
    if not path.is_file():
        raise DataError(f"{path} does not exist: {_LAYOUT}")
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2 or not fields[1].isdigit() or int(fields[1]) >= NUM_CLASSES:
            raise DataError(f"{path}, line {number}: expected '<{what}> <class 0-{NUM_CLASSES - 1}>', found "
                            f"{line.strip()!r}")
        rows.append((fields[0], int(fields[1])))
    return rows


def categories(root: Path) -> list[str]:
    """The category names (e.g. /a/airfield) by class number."""
    rows = read_list(root / CATEGORIES, "category")
    names = {label: name for name, label in rows}
    if sorted(names) != list(range(NUM_CLASSES)):
        raise DataError(f"{root / CATEGORIES}: expected each class 0-{NUM_CLASSES - 1} once, found {len(names)}")
    return [names[i] for i in range(NUM_CLASSES)]


def image_folder(root: Path, split: str) -> Path:
    for name in FOLDERS[split]:
        if (root / name).is_dir():
            return root / name
    raise DataError(f"{root} has no {' or '.join(f + '/' for f in FOLDERS[split])}: {_LAYOUT}")


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """The `split` (train, val or all) of Places365-Standard, labelled with its 365 categories."""
    root = require_root("places365", root)
    categories(root)  # a layout check: the class numbers the lists use must be the published ones
    paths, labels = [], []
    for part in ("train", "val") if split == "all" else (split,):
        folder = image_folder(root, part)
        rows = read_list(root / LISTS[part], "image")
        paths += [folder / name.lstrip("/") for name, _ in rows]
        labels += [label for _, label in rows]
        # The first and last listed images, not all 1.8 million: a wrong layout fails here, a lost file later is
        # skipped with a warning as any unreadable image.
        for path in {paths[-len(rows)], paths[-1]} if rows else ():
            if not path.is_file():
                raise DataError(f"{path} is listed in {root / LISTS[part]} but missing: {_LAYOUT}")
    if not paths:
        raise DataError(f"{root}: the {split} list is empty")
    return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop,
                            description=describe("places365", split, len(paths)), labels=labels,
                            num_classes=NUM_CLASSES)
