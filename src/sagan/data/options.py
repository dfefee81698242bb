"""The options every dataset builder shares: the data root and the split."""

import os
from pathlib import Path

from ..errors import DataError, MissingPathError


def require_root(dataset: str, root: str | os.PathLike | None) -> Path:
    """Return `root` as a Path after checking that it names an existing folder."""
    if root is None:
        raise DataError(f"the {dataset} dataset needs a data root folder (data.root)")
    path = Path(root).expanduser()
    if not path.exists():
        raise MissingPathError(f"data root {path} does not exist")
    if not path.is_dir():
        raise DataError(f"data root {path} is not a folder")
    return path


def require_split(dataset: str, split: str, splits: tuple[str, ...], option: str = "data.split") -> None:
    if split not in splits:
        raise DataError(f"{option}: {dataset} has no split '{split}'; choose from {', '.join(splits)}")


def describe(dataset: str, split: str, count: int) -> str:
    """A one-line summary such as 'celeba train split, 579 images'."""
    part = "all splits" if split == "all" else f"{split} split"
    return f"{dataset} {part}, {count} images"
