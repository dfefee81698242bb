"""ILSVRC-2012 (ImageNet-1k) as published (https://image-net.org), the train folders and the val images:

    root/train/n01440764/n01440764_10026.JPEG    one folder per synset (each class tar of ILSVRC2012_img_train.tar
                                                 unpacked into its folder)
    root/val/ILSVRC2012_val_00000001.JPEG        ILSVRC2012_img_val.tar unpacked, labelled by one of:
      root/LOC_val_solution.csv                  "ImageId,PredictionString" with the synset first (Kaggle's copy)
      root/ILSVRC2012_devkit_t12/                data/ILSVRC2012_validation_ground_truth.txt and data/meta.mat
                                                 (ILSVRC2012_devkit_t12.tar.gz; reading meta.mat needs scipy)
    or root/val/n01440764/*.JPEG                 val already sorted into synset folders

Classes are the synsets in sorted order, the standard index of ImageNet classifiers (class 0 is n01440764, tench):
the train folders, or LOC_synset_mapping.txt when there is no train/ folder.
"""

import csv
import os
import re
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError, MissingExtraError
from .image_files import ImageFileDataset
from .imagefolder import find_images
from .options import describe, require_root

SPLITS = ("train", "val", "all")
SOLUTION = "LOC_val_solution.csv"
SYNSET_MAPPING = "LOC_synset_mapping.txt"
DEVKIT = "ILSVRC2012_devkit_t12"
GROUND_TRUTH = "data/ILSVRC2012_validation_ground_truth.txt"
SYNSET = re.compile(r"n\d{8}")
_LAYOUT = (f"expected ILSVRC-2012 as published: train/<synset>/*.JPEG and val/ILSVRC2012_val_*.JPEG with {SOLUTION} "
           f"or {DEVKIT}/ (or val/<synset>/)")


def synsets(root: Path) -> list[str]:
    """The class synsets in the standard (sorted) order."""
    train = root / "train"
    if train.is_dir():
        found = sorted(p.name for p in train.iterdir() if p.is_dir() and SYNSET.fullmatch(p.name))
        if not found:
            raise DataError(f"{train} has no synset folders (n01440764/ ...): {_LAYOUT}")
        return found
    mapping = root / SYNSET_MAPPING
    if mapping.is_file():
        lines = [line.split()[0] for line in mapping.read_text().splitlines() if line.strip()]
        return sorted(lines)
    raise DataError(f"{root} has no train/ folder (or {SYNSET_MAPPING}) to take the classes from: {_LAYOUT}")


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """The `split` (train, val or all) of ILSVRC-2012, labelled with its synsets."""
    root = require_root("imagenet", root)
    classes = synsets(root)
    index = {synset: i for i, synset in enumerate(classes)}
    paths, labels = [], []
    for part in ("train", "val") if split == "all" else (split,):
        found = _in_synset_folders(root / "train", index) if part == "train" else _val(root, index)
        paths += [path for path, _ in found]
        labels += [label for _, label in found]
    return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop,
                            description=describe("imagenet", split, len(paths)) + f", {len(classes)} classes",
                            labels=labels, num_classes=len(classes))


def _in_synset_folders(folder: Path, index: dict[str, int]) -> list[tuple[Path, int]]:
    """Images in synset folders under `folder`, class by class."""
    found = [(path, label) for synset, label in index.items() if (folder / synset).is_dir()
             for path in find_images(folder / synset)]
    if not found:
        raise DataError(f"{folder} holds no images in synset folders: {_LAYOUT}")
    return found


def _val(root: Path, index: dict[str, int]) -> list[tuple[Path, int]]:
    folder = root / "val"
    if not folder.is_dir():
        raise DataError(f"{root} has no val/ folder: {_LAYOUT}")
    if any(SYNSET.fullmatch(p.name) and p.is_dir() for p in folder.iterdir()):
        return _in_synset_folders(folder, index)
    if (root / SOLUTION).is_file():
        labels = _solution(root / SOLUTION, index)
    elif (root / DEVKIT).is_dir():
        labels = _devkit(root / DEVKIT, index)
    else:
        raise DataError(f"{root} has neither {SOLUTION} nor {DEVKIT}/ to label val/: {_LAYOUT}")
    found = [(folder / f"{image_id}.JPEG", label) for image_id, label in sorted(labels.items())]
    for path in {found[0][0], found[-1][0]} if found else ():  # a spot check, not 50,000 file lookups
        if not path.is_file():
            raise DataError(f"{path} is labelled but missing: {_LAYOUT}")
    return found


def _solution(path: Path, index: dict[str, int]) -> dict[str, int]:
    """ImageId -> class from LOC_val_solution.csv: the first synset of each PredictionString."""
    labels = {}
    with open(path, newline="", encoding="utf-8") as f:
        rows = csv.reader(f)
        header = next(rows, None)
        if header != ["ImageId", "PredictionString"]:
            raise DataError(f"{path}, line 1: expected the header 'ImageId,PredictionString', found {header}")
        for number, row in enumerate(rows, 2):
            synset = row[1].split()[0] if len(row) == 2 and row[1].split() else ""
            if synset not in index:
                raise DataError(f"{path}, line {number}: expected '<image id>,<synset> <box> ...' with one of the "
                                f"{len(index)} synsets, found {','.join(row)!r}")
            labels[row[0]] = index[synset]
    return labels


def _devkit(devkit: Path, index: dict[str, int]) -> dict[str, int]:
    """ImageId -> class from the devkit: line i of the ground truth is the ILSVRC2012_ID of val image i."""
    try:
        from scipy.io import loadmat
    except ImportError:
        raise MissingExtraError(f"reading {devkit}/data/meta.mat needs scipy (pip install 'sagan[imagenet]'), or put "
                                f"Kaggle's {SOLUTION} beside val/") from None
    meta = loadmat(devkit / "data" / "meta.mat", squeeze_me=True)["synsets"]
    wnid = {int(row["ILSVRC2012_ID"]): str(row["WNID"]) for row in meta}
    labels = {}
    path = devkit / GROUND_TRUTH
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        if not line.strip().isdigit() or wnid.get(int(line)) not in index:
            raise DataError(f"{path}, line {number}: expected an ILSVRC2012_ID of one of the {len(index)} classes, "
                            f"found {line.strip()!r}")
        labels[f"ILSVRC2012_val_{number:08d}"] = index[wnid[int(line)]]
    return labels
