"""LSUN scenes from one category database as published (e.g. church_outdoor_train_lmdb/: data.mdb, lock.mdb).

`data.root` is the database folder itself, so any category and either published split (`*_train_lmdb`,
`*_val_lmdb`) is read the same way. Keys are image ids; values are encoded images (WebP in the published
databases, sometimes JPEG), short side 256 px. Needs the optional lmdb package: pip install 'sagan[lsun]'.
"""

import os
from pathlib import Path

from torch.utils.data import Dataset

from ..errors import DataError
from .archives import LmdbRecords, lmdb_keys
from .image_files import ImageFileDataset
from .options import require_root

DATA_FILE = "data.mdb"
SPLITS = ("train", "all")  # the database's own split: both mean all of it


def find_database(root: Path) -> Path:
    """Check that `root` is an LMDB database folder; name the databases inside it when it is their parent."""
    if (root / DATA_FILE).is_file():
        return root
    inside = sorted(path.name for path in root.iterdir() if (path / DATA_FILE).is_file())
    if inside:
        raise DataError(f"data root {root} holds LSUN databases; point data.root at one of them: {', '.join(inside)}")
    raise DataError(f"data root {root} has no {DATA_FILE}: expected an LSUN category database folder such as "
                    f"church_outdoor_train_lmdb/")


def build(root: str | os.PathLike | None, split: str, resolution: int, channels: int, crop: int) -> Dataset:
    """Every image of the database at `root`; its split is the database's, so 'train' and 'all' both mean all."""
    database = find_database(require_root("lsun", root))
    keys = lmdb_keys(database)
    if not len(keys):
        raise DataError(f"LSUN database {database} holds no records")
    return ImageFileDataset(LmdbRecords(database, keys), resolution=resolution, channels=channels, crop=crop,
                            description=f"lsun {database.name}, {len(keys)} images")
