"""Images stored inside one big file (a zip, an LMDB database), read member by member without unpacking.

`ZipMembers` and `LmdbRecords` are lazy sequences of open in-memory image files (`ArchiveMembers`) for
`ImageFileDataset`. Each process opens the archive itself on first use: DataLoader workers are forked or spawned
copies, and a file handle shared across a fork would interleave the seeks and reads of different workers.
"""

import hashlib
import io
import os
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from ..errors import DataError
from .image_files import ArchiveMembers


class _Archive(ArchiveMembers):
    """A lazy sequence of the members named by `keys`, opened once per process."""

    def __init__(self, path: Path, keys: Sequence):
        self.path = path
        self.keys = keys
        self._handle: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> BinaryIO:
        if self._pid != os.getpid():
            if self._handle is not None:
                # Inherited through fork: close this process's copy (the parent keeps its own) so that lmdb,
                # which refuses to open a database twice in one process, lets this process open its own.
                self._handle.close()
            self._handle, self._pid = self._open(), os.getpid()
        return io.BytesIO(self._read(self._handle, self.keys[index]))

    def __getstate__(self) -> dict:
        # Spawned workers and pickled copies open their own handle.
        return self.__dict__ | {"_handle": None, "_pid": -1}

    def name(self, index: int) -> str:
        return f"{self.path}:{self._key_name(self.keys[index])}"

    def fingerprint(self) -> str:
        """The archive's path, size and modification time, and a hash of the members selected."""
        stat = self._data_file().stat()
        keys = hashlib.sha256(b"\0".join(self._key_name(key).encode() for key in self.keys)).hexdigest()
        return f"{self.path}\0{stat.st_size}\0{stat.st_mtime_ns}\0{keys}"

    def _open(self) -> Any:
        raise NotImplementedError

    def _read(self, handle: Any, key) -> bytes:
        raise NotImplementedError

    def _key_name(self, key) -> str:
        return str(key)

    def _data_file(self) -> Path:
        return self.path


class ZipMembers(_Archive):
    """Members of a zip file, by their names in the archive."""

    def _open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.path)

    def _read(self, handle: zipfile.ZipFile, key: str) -> bytes:
        return handle.read(key)


class LmdbRecords(_Archive):
    """Values of an LMDB database, by key; `keys` may be a numpy bytes array, which holds millions compactly."""

    def _open(self):
        return open_lmdb(self.path)

    def _read(self, env, key: bytes) -> bytes:
        with env.begin(write=False) as txn:
            value = txn.get(bytes(key))
        if value is None:
            raise DataError(f"{self.path} has no record {self._key_name(key)}; the database changed after it was "
                            f"listed")
        return value

    def _key_name(self, key: bytes) -> str:
        return bytes(key).decode("ascii", errors="backslashreplace")

    def _data_file(self) -> Path:
        return self.path / "data.mdb"


def open_lmdb(path: Path):
    """Open the LMDB database folder `path` read-only, without locking (many readers, no writer)."""
    try:
        import lmdb
    except ImportError:
        raise DataError("reading LMDB databases (LSUN) needs the lmdb package: pip install 'sagan[lsun]'") from None
    try:
        return lmdb.open(str(path), readonly=True, lock=False, readahead=False, meminit=False)
    except lmdb.Error as e:
        raise DataError(f"cannot open LMDB database {path}: {e}") from None


def lmdb_keys(path: Path) -> np.ndarray | list[bytes]:
    """All keys of the LMDB database at `path`, in key order."""
    env = open_lmdb(path)
    try:
        with env.begin(write=False) as txn:
            keys = list(txn.cursor().iternext(keys=True, values=False))
    finally:
        env.close()
    # A fixed-width bytes array stores LSUN's millions of 40-byte keys without an object per key, but drops
    # trailing zero bytes, so keys ending in one stay python bytes.
    if keys and not any(key.endswith(b"\0") for key in keys):
        return np.array(keys)
    return keys
