"""Atomic file writes (a reader never sees a half-written file, even if the writer is killed) and the cache folder."""

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write `data` to `path` through a temporary file in the same folder and a rename."""
    with atomic_writer(path) as f:
        f.write(data)


@contextmanager
def atomic_writer(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file (seekable) that appears at `path`, complete, only when the `with` block ends without an error."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except FileExistsError as e:  # mkdir met a file where a folder of the path should be
        raise NotADirectoryError(errno.ENOTDIR, f"{e.filename} is not a folder", str(path)) from e
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), str(path)) from e
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes owner-only files; give the usual permissions
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_folder(path.parent)  # the rename itself survives a power cut only once its folder is on disk
    except BaseException as e:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(e, OSError) and e.filename in (None, tmp):  # name the file the write was for, not its temporary
            raise OSError(e.errno, e.strerror or str(e), str(path)) from e
        raise


def remove_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the temporary files `atomic_writer` left in `folder` when its process was killed mid-write (call it
    only where no other process writes); returns them."""
    found = sorted(Path(folder).glob(".*.tmp")) if Path(folder).is_dir() else []
    for path in found:
        path.unlink(missing_ok=True)
    return found


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def cache_dir(kind: str) -> Path:
    """The folder of automatic caches of `kind` (datasets, stats): $SAGAN_CACHE/KIND, else
    $XDG_CACHE_HOME/sagan/KIND, else ~/.cache/sagan/KIND."""
    if os.environ.get("SAGAN_CACHE"):
        root = Path(os.environ["SAGAN_CACHE"])
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "sagan"
    return root.expanduser() / kind


def keyed_path(folder: str | os.PathLike, stem: str, key: dict[str, Any], suffix: str) -> Path:
    """FOLDER/STEM-DIGEST.SUFFIX, DIGEST a hash of `key`: the cache file of whatever `key` describes."""
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return Path(folder) / f"{stem}-{digest}{suffix}"
