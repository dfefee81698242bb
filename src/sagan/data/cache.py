"""The preprocessing cache: an image-file dataset decoded once into one memory-mapped file.

Decoding JPEGs every step is the bottleneck of training on small machines. The cache holds the finished pixels
(after the crop, resize and channel conversion of `load_image`), so training reads them at memory speed and sees
exactly the pixels it would have decoded.

The file is a standard NumPy `.npy` file of the uint8 N x R x R x C images, so `np.load(path, mmap_mode="r")` maps
them, followed by the int64 labels (when the dataset has labels), a UTF-8 JSON header and a 16-byte footer: the
header's length (8 bytes, little-endian) and MAGIC. The header records what the pixels depend on (the dataset
options, a fingerprint of the files, the preprocessing version and the Pillow version) and the images left out as
unusable; a cache whose record differs from the current one is rebuilt, so a stale cache is never read.
"""

import json
import logging
import multiprocessing
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import PIL
from tqdm import tqdm

from ..errors import DataError
from ..files import atomic_writer, cache_dir, keyed_path
from .arrays import ArrayDataset
from .image_files import MAX_CONSECUTIVE_BAD, ImageFileDataset
from .transforms import PREPROCESSING_VERSION, BadImageError

FORMAT_VERSION = 1  # of the file layout below
MAGIC = b"SAGANDS\x00"
_NPY_HEADER_BYTES = 128  # reserved before the pixels, so the header can be written last, when N is known
_CHUNK = 64  # images per task of a decoding process

log = logging.getLogger("sagan.data")


def cache_path(options: dict[str, Any], location: str | os.PathLike = "auto") -> Path:
    """The cache file for a dataset described by `options`: `location` itself when it names a .npy file, otherwise
    a file named after the options in the folder `location` ('auto': `cache_dir("datasets")`)."""
    location = Path(cache_dir("datasets") if str(location) == "auto" else location).expanduser()
    if location.suffix == ".npy":
        return location
    stem = "-".join(str(options[key]) for key in ("name", "split", "resolution") if key in options)
    return keyed_path(location, stem or "dataset", options, ".npy")


class CachedDataset(ArrayDataset):
    """A cache file as a dataset: `(image, label)` pairs read from the memory-mapped pixels."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.header = read_header(self.path)
        images = np.load(self.path, mmap_mode="r")
        count, resolution, _, channels = images.shape
        labels = None
        if self.header["labels"]:
            labels = np.fromfile(self.path, dtype="<i8", count=count, offset=self.header["labels_offset"])
        super().__init__(images, labels, resolution=resolution, channels=channels, num_classes=self.header[
                         "num_classes"], description=f"{self.header['description']} (cached in {self.path})")
        self.skipped: dict[str, str] = dict(self.header["skipped"])
        self.rebuilt_because: str | None = None  # set by `cached` when it built the file


def read_header(path: Path) -> dict[str, Any]:
    """The JSON header of the cache file `path`; DataError when it is not a complete cache file."""
    not_a_cache = DataError(f"{path} is not a sagan dataset cache, or not a complete one")
    try:
        with open(path, "rb") as f:
            size = f.seek(0, os.SEEK_END)
            f.seek(max(size - 16, 0))
            footer = f.read(16)
            length = int.from_bytes(footer[:8], "little")
            if footer[8:] != MAGIC or length > size - 16:
                raise not_a_cache
            f.seek(size - 16 - length)
            text = f.read(length)
    except OSError as e:
        raise DataError(f"cannot read the dataset cache {path}: {e.strerror or e}") from None
    try:
        return json.loads(text)
    except ValueError:
        raise not_a_cache from None


def cached(dataset: ImageFileDataset, options: dict[str, Any], location: str | os.PathLike = "auto", *,
           workers: int = 0, strict: bool = False, progress: bool = True) -> CachedDataset:
    """`dataset` read from its cache file, which is built first when missing or stale.

    `options` are what the dataset's pixels and labels depend on besides its files (name, absolute root, split,
    resolution, crop, channels, label options); `location` as in `cache_path`. A file named explicitly that caches
    other options is refused rather than overwritten. With `strict`, a cache that left out unusable images is
    refused, and building one stops at the first unusable image.
    """
    path = cache_path(options, location)
    record = _record(dataset, options)
    reason = _stale(path, record, explicit=Path(location).suffix == ".npy")
    if reason:
        log.info(f"building the dataset cache {path}: {reason}")
        try:
            build(dataset, path, record, workers=workers, strict=strict, progress=progress)
        except OSError as e:
            raise DataError(f"cannot write the dataset cache {path}: {e.strerror or e}; set data.cache to another "
                            f"folder or file, or to off") from None
    cache = CachedDataset(path)
    cache.rebuilt_because = reason
    if strict and cache.skipped:
        why = next(iter(cache.skipped.values()))
        raise DataError(f"{path} leaves out {len(cache.skipped)} unusable images (the first: {why}); strict mode "
                        f"(data.strict, --strict) does not allow skipping them")
    return cache


def _record(dataset: ImageFileDataset, options: dict[str, Any]) -> dict[str, Any]:
    """What the cached pixels depend on; a cache file is used only when its record is equal."""
    return {"format": FORMAT_VERSION, "preprocessing": PREPROCESSING_VERSION, "pillow": PIL.__version__,
            "options": json.loads(json.dumps(options)), "fingerprint": dataset.fingerprint()}


def _stale(path: Path, record: dict[str, Any], explicit: bool) -> str | None:
    """Why the cache file `path` cannot be used for `record`, or None when it can."""
    if not path.exists():
        return "no cache yet"
    try:
        header = read_header(path)
    except DataError:
        if explicit:
            raise
        return "the file is unreadable"
    if header.get("options") != record["options"]:
        if explicit:
            theirs, ours = header.get("options") or {}, record["options"]
            differ = [f"{key}={theirs.get(key)!r}, not {ours.get(key)!r}" for key in sorted(set(theirs) | set(ours))
                      if theirs.get(key) != ours.get(key)]
            raise DataError(f"{path} caches other dataset options ({'; '.join(differ)}); name another file or use "
                            f"data.cache=auto")
        return "it caches other dataset options"
    if any(header.get(key) != record[key] for key in ("format", "preprocessing", "pillow")):
        return "it was made by another version of the preprocessing"
    if header.get("fingerprint") != record["fingerprint"]:
        return "the image files changed since it was made"
    return None


def build(dataset: ImageFileDataset, path: Path, record: dict[str, Any], *, workers: int = 0, strict: bool = False,
          progress: bool = True) -> None:
    """Decode every image of `dataset` into the cache file `path`, atomically (a temporary file, then a rename).

    Unusable images are left out, each with a warning, and counted at the end; with `strict` the first one is an
    error. Decoding runs in `workers` processes (0: in this one).
    """
    count, side, channels = len(dataset), dataset.resolution, dataset.channels
    image_bytes = side * side * channels
    path.parent.mkdir(parents=True, exist_ok=True)
    free = shutil.disk_usage(path.parent).free
    needed = _NPY_HEADER_BYTES + count * (image_bytes + 8)
    if needed > free:
        raise DataError(f"the dataset cache {path} needs {needed / 1e9:.2f} GB but {path.parent} has "
                        f"{free / 1e9:.2f} GB free; free some space, set SAGAN_CACHE or data.cache, or data.cache=off")
    start = time.perf_counter()
    with atomic_writer(path) as f, tqdm(total=count, unit="img", desc=f"caching {dataset.description}",
                                        disable=not progress, dynamic_ncols=True) as bar:
        f.write(bytes(_NPY_HEADER_BYTES))
        kept, skipped, bad_run, error = [], {}, [], None
        for index, image, error in _decode(dataset, workers):
            bar.update()
            if error is None:
                f.write(image.tobytes())
                kept.append(index)
                bad_run = []
                continue
            if strict:
                raise DataError(f"{error} (strict mode: data.strict, --strict)")
            with tqdm.external_write_mode():
                log.warning(f"skipped: {error}")
            skipped[dataset.name(index)] = error
            bad_run.append(index)
            if len(bad_run) == MAX_CONSECUTIVE_BAD:
                raise DataError(f"{dataset.description}: the {len(bad_run)} images from {dataset.name(bad_run[0])} "
                                f"on are all unusable; the last: {error}")
        if not kept:
            raise DataError(f"none of the {count} images of {dataset.description} is usable; the last: {error}")
        header = record | {
            "count": len(kept), "shape": [len(kept), side, side, channels], "labels": dataset.labels is not None,
            "labels_offset": _NPY_HEADER_BYTES + len(kept) * image_bytes, "num_classes": dataset.num_classes,
            "description": dataset.description, "skipped": sorted(skipped.items()),
            "seconds": round(time.perf_counter() - start, 1),
        }
        if dataset.labels is not None:
            f.write(np.asarray([dataset.label(i) for i in kept], dtype="<i8").tobytes())
        text = json.dumps(header).encode()
        f.write(text + len(text).to_bytes(8, "little") + MAGIC)
        f.seek(0)
        f.write(_npy_header((len(kept), side, side, channels)))
    if skipped:
        log.warning(f"skipped {len(skipped)} unreadable image{'s' * (len(skipped) != 1)}; the cache {path} leaves "
                    f"{'them' if len(skipped) != 1 else 'it'} out")


def _decode(dataset: ImageFileDataset, workers: int) -> Iterator[tuple[int, np.ndarray | None, str | None]]:
    """(index, pixels, None) for each usable image and (index, None, reason) for each unusable one, in order."""
    chunks = [range(start, min(start + _CHUNK, len(dataset))) for start in range(0, len(dataset), _CHUNK)]
    if workers == 0:
        for chunk in chunks:
            yield from _decode_chunk(dataset, chunk)
        return
    with multiprocessing.get_context().Pool(workers, initializer=_set_worker_dataset, initargs=(dataset,)) as pool:
        for results in pool.imap(_decode_worker_chunk, chunks):
            yield from results


_worker_dataset: ImageFileDataset | None = None


def _set_worker_dataset(dataset: ImageFileDataset) -> None:
    global _worker_dataset
    _worker_dataset = dataset


def _decode_worker_chunk(chunk: range) -> list[tuple[int, np.ndarray | None, str | None]]:
    return _decode_chunk(_worker_dataset, chunk)


def _decode_chunk(dataset: ImageFileDataset, chunk: range) -> list[tuple[int, np.ndarray | None, str | None]]:
    results = []
    for index in chunk:
        try:
            results.append((index, dataset.load(index), None))
        except BadImageError as e:
            results.append((index, None, str(e)))
    return results


def _npy_header(shape: tuple[int, ...]) -> bytes:
    """A version 1.0 .npy header for uint8 C-order data, padded to exactly _NPY_HEADER_BYTES."""
    text = repr({"descr": "|u1", "fortran_order": False, "shape": shape})
    text = text.ljust(_NPY_HEADER_BYTES - 10 - 1) + "\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text.encode("latin1")
