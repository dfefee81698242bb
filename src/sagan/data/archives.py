"""Images stored inside one big file (a zip, an LMDB database), read member by member without unpacking.

`ZipMembers` and `LmdbRecords` are lazy sequences of open in-memory image files, ready for `ImageFileDataset`.
Each process opens the archive itself on first use: DataLoader workers are forked or spawned copies, and a file
handle shared across a fork would interleave the seeks and reads of different workers.
"""

import io
import os
import zipfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import DataError


class Member(io.BytesIO):
    """The bytes of one archive member, an open binary file whose str() names it in error messages."""

    def __init__(self, data: bytes, name: str):
        super().__init__(data)
        self.name = name

    def __str__(self) -> str:
        return self.name


class _Archive(Sequence):
    """A lazy sequence of the members named by `keys`, opened once per process."""

    def __init__(self, path: Path, keys: Sequence):
        self.path = path
        self.keys = keys
        self._handle: Any = None
        self._pid = -1

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, index: int) -> Member:
        if self._pid != os.getpid():
            self._handle, self._pid = self._open(), os.getpid()
        key = self.keys[index]
        return Member(self._read(self._handle, key), f"{self.path}:{self._key_name(key)}")

    def __getstate__(self) -> dict:
        # Spawned workers and pickled copies open their own handle.
        return self.__dict__ | {"_handle": None, "_pid": -1}

    def _open(self) -> Any:
        raise NotImplementedError

    def _read(self, handle: Any, key) -> bytes:
        raise NotImplementedError

    def _key_name(self, key) -> str:
        return str(key)


class ZipMembers(_Archive):
    """Members of a zip file, by their names in the archive."""

    def _open(self) -> zipfile.ZipFile:
        return zipfile.ZipFile(self.path)

    def _read(self, handle: zipfile.ZipFile, key: str) -> bytes:
        try:
            return handle.read(key)
        except (zipfile.BadZipFile, zlib.error, OSError, EOFError) as e:
            raise DataError(f"cannot read {key} from {self.path}: {e}") from None


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
