"""CelebA in its official layout: root/img_align_celeba/*.jpg (178x218) and root/list_eval_partition.txt.

The images may also stay in the published root/img_align_celeba.zip. With an attribute, root/list_attr_celeba.txt
gives each image a label: 1 where it has the attribute, 0 where not.
"""

import difflib
import os
import zipfile
from collections import Counter
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError, MissingPathError
from .archives import ZipMembers
from .image_files import ImageFileDataset
from .options import describe, require_root

IMAGE_FOLDER = "img_align_celeba"
IMAGE_ZIP = "img_align_celeba.zip"
PARTITION_FILE = "list_eval_partition.txt"
ATTRIBUTE_FILE = "list_attr_celeba.txt"
PARTITIONS = {"train": 0, "valid": 1, "test": 2}  # the numbers list_eval_partition.txt gives each split
SPLITS = (*PARTITIONS, "all")
# The common recipe: a 178x178 square, the full image width, centred on the aligned face, keeps the whole face
# and resizes it without distortion. Tighter crops (DCGAN-era code uses 160, some 140 or 108) zoom in on the
# face and cut off hair and background; pass them as data.crop.
DEFAULT_CROP = 178
_LAYOUT = (f"expected the official CelebA layout: {IMAGE_FOLDER}/ (or the unopened {IMAGE_ZIP}) and "
           f"{PARTITION_FILE}")


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


def read_attribute(path: Path, attribute: str) -> dict[str, int]:
    """Image name -> 1 if it has `attribute` in list_attr_celeba.txt (values 1 / -1), else 0."""
    if not path.is_file():
        raise MissingPathError(f"data.attribute needs {path}, the official CelebA attribute file")
    lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    names = lines[1].split() if len(lines) > 1 else []
    if attribute not in names:
        near = difflib.get_close_matches(attribute, names, n=3, cutoff=0.5)
        near += [name for name in names if attribute.lower() in name.lower() and name not in near]
        hint = f"did you mean {' or '.join(near)}?" if near else f"choose from {', '.join(names)}"
        raise DataError(f"data.attribute: {path} has no attribute '{attribute}'; {hint}")
    column = names.index(attribute) + 1
    labels = {}
    for number, line in enumerate(lines[2:], 3):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != len(names) + 1 or fields[column] not in ("1", "-1"):
            raise DataError(f"{path}, line {number}: expected an image name and {len(names)} attribute values "
                            f"(1 or -1)")
        labels[fields[0]] = int(fields[column] == "1")
    return labels


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int,
          attribute: str = "") -> Dataset:
    """The `split` ('train', 'valid', 'test' or 'all') of CelebA; crop=0 means the 178 px default.

    With `attribute` (a column of list_attr_celeba.txt, e.g. 'Smiling') the images have 2 classes.
    """
    root = require_root("celeba", root)
    folder, partition_path = root / IMAGE_FOLDER, root / PARTITION_FILE
    archive = root / IMAGE_ZIP
    if not folder.is_dir() and not archive.is_file():
        raise DataError(f"{root} has no {IMAGE_FOLDER}/ folder: {_LAYOUT}")
    if not partition_path.is_file():
        raise DataError(f"{root} has no {PARTITION_FILE}: {_LAYOUT}")
    rows = read_partition(partition_path)
    names = [name for name, part in rows if split == "all" or part == PARTITIONS[split]]
    if not names:
        counts = Counter(part for _, part in rows)
        found = ", ".join(f"{counts[number]} {name}" for name, number in PARTITIONS.items())
        raise DataError(f"no {split} images in {root}: {partition_path} lists {found} images")
    if folder.is_dir():
        source, present, paths = folder, set(os.listdir(folder)), [folder / name for name in names]
    else:
        source, present = archive, _zip_images(archive)
        paths = ZipMembers(archive, [f"{IMAGE_FOLDER}/{name}" for name in names])
    missing = [name for name in names if name not in present]
    if missing:
        raise DataError(f"{len(missing)} of the {len(names)} images that {partition_path} lists for this split "
                        f"are missing from {source}, the first being {missing[0]}")
    description = describe("celeba", split, len(names))
    labels = None
    if attribute:
        attributes = read_attribute(root / ATTRIBUTE_FILE, attribute)
        unlabelled = [name for name in names if name not in attributes]
        if unlabelled:
            raise DataError(f"{root / ATTRIBUTE_FILE} has no row for {len(unlabelled)} of the {len(names)} images, "
                            f"the first being {unlabelled[0]}")
        labels = [attributes[name] for name in names]
        description += f", labelled by {attribute} (1: {sum(labels)}, 0: {len(labels) - sum(labels)})"
    return ImageFileDataset(paths, resolution=resolution, channels=channels, crop=crop or DEFAULT_CROP,
                            description=description, labels=labels, num_classes=2 if attribute else 0)


def _zip_images(archive: Path) -> set[str]:
    """The names of the images in the img_align_celeba/ folder of the published zip."""
    try:
        with zipfile.ZipFile(archive) as z:
            members = z.namelist()
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"cannot read {archive}: {e}") from None
    prefix = IMAGE_FOLDER + "/"
    return {name[len(prefix):] for name in members if name.startswith(prefix)}
