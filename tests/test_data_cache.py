"""Tests for sagan.data.cache: the memory-mapped preprocessing cache gives exactly the pixels of the image files,
is rebuilt whenever it could be stale, and is written atomically."""

import io
import json
import logging
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import SHARED_DATA, needs_shared_data, tiny_config
from PIL import Image

from sagan import config
from sagan.cli import main
from sagan.data import ImageFileDataset, build, cache
from sagan.data.cache import CachedDataset, cached
from sagan.errors import DataError
from sagan.files import cache_dir
from sagan.training.trainer import load_training_set


def make_folder(root: Path, count: int = 12) -> Path:
    """Random RGB images of a few sizes, as PNG (lossless) and JPEG."""
    rng = np.random.default_rng(0)
    root.mkdir(parents=True, exist_ok=True)
    for i in range(count):
        pixels = rng.integers(0, 256, (20 + i % 3, 24 + i % 5, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(root / f"{i:03d}.{'png' if i % 2 else 'jpg'}")
    return root


def options(root: Path, **extra) -> dict:
    return {"name": "imagefolder", "root": str(root.resolve()), "resolution": 16} | extra


def items(dataset) -> list[tuple[torch.Tensor, int]]:
    return [dataset[i] for i in range(len(dataset))]


def same_items(a, b) -> bool:
    return len(a) == len(b) and all(torch.equal(x, y) and k == m for (x, k), (y, m) in zip(items(a), items(b)))


@pytest.fixture
def folder(tmp_path):
    return make_folder(tmp_path / "images")


@pytest.mark.parametrize("channels", [3, 1])
def test_cached_items_equal_decoded_items_bit_for_bit(folder, tmp_path, channels):
    dataset = build("imagefolder", folder, resolution=16, channels=channels, crop=18)
    cache_file = cached(dataset, options(folder, channels=channels), tmp_path / "c.npy", progress=False)
    assert isinstance(cache_file, CachedDataset) and cache_file.rebuilt_because == "no cache yet"
    assert same_items(cache_file, dataset)
    assert "(cached in" in cache_file.description and cache_file.description.startswith(dataset.description)


def test_labels_and_parallel_decoding_give_the_same_file(folder, tmp_path):
    labels = [i % 3 for i in range(12)]
    dataset = ImageFileDataset(sorted(folder.iterdir()), resolution=16, channels=3, crop=0, description="labelled",
                               labels=labels, num_classes=3)
    serial = cached(dataset, options(folder), tmp_path / "serial.npy", progress=False)
    parallel = cached(dataset, options(folder), tmp_path / "parallel.npy", workers=2, progress=False)
    assert serial.num_classes == 3 and [label for _, label in items(serial)] == labels
    assert same_items(serial, dataset)
    headers = [cache.read_header(result.path) for result in (serial, parallel)]
    assert [header.pop("seconds") >= 0 for header in headers] == [True, True] and headers[0] == headers[1]
    assert np.array_equal(np.load(serial.path, mmap_mode="r"), np.load(parallel.path, mmap_mode="r"))


def test_the_file_is_a_npy_file_numpy_maps(folder, tmp_path):
    path = cached(build("imagefolder", folder, resolution=16), options(folder), tmp_path, progress=False).path
    images = np.load(path, mmap_mode="r")
    assert isinstance(images, np.memmap) and images.shape == (12, 16, 16, 3) and images.dtype == np.uint8
    header = cache.read_header(path)
    assert header["count"] == 12 and header["options"] == options(folder) and header["skipped"] == []
    assert header["format"] == cache.FORMAT_VERSION and not header["labels"]


def test_a_fresh_cache_is_reused_and_a_stale_one_rebuilt(folder):
    def cache_of(**extra):
        return cached(build("imagefolder", folder, resolution=16), options(folder, **extra), progress=False)

    first = cache_of()
    assert first.path.parent == cache_dir("datasets") and first.rebuilt_because
    assert cache_of().rebuilt_because is None
    os.utime(folder / "003.png", ns=(1, 1))  # same bytes, another modification time: it might have changed
    assert cache_of().rebuilt_because == "the image files changed since it was made"
    (folder / "003.png").unlink()
    rebuilt = cache_of()
    assert rebuilt.rebuilt_because == "the image files changed since it was made" and len(rebuilt) == 11
    assert cache_of(crop=18).path != first.path  # other options, another automatic file
    assert cache_of().rebuilt_because is None


def test_another_preprocessing_version_is_rebuilt(folder, tmp_path, monkeypatch):
    dataset = build("imagefolder", folder, resolution=16)
    cached(dataset, options(folder), tmp_path, progress=False)
    monkeypatch.setattr(cache, "PREPROCESSING_VERSION", cache.PREPROCESSING_VERSION + 1)
    again = cached(dataset, options(folder), tmp_path, progress=False)
    assert again.rebuilt_because == "it was made by another version of the preprocessing"


def test_a_named_file_of_other_options_or_no_cache_is_refused(folder, tmp_path):
    path = tmp_path / "celeba64.npy"
    cached(build("imagefolder", folder, resolution=16), options(folder), path, progress=False)
    with pytest.raises(DataError, match=r"celeba64\.npy caches other dataset options \(resolution=16, not 32\)"):
        cached(build("imagefolder", folder, resolution=32), options(folder, resolution=32), path, progress=False)
    other = tmp_path / "other.npy"
    np.save(other, np.zeros(3))
    with pytest.raises(DataError, match="other.npy is not a sagan dataset cache, or not a complete one"):
        cached(build("imagefolder", folder, resolution=16), options(folder), other, progress=False)
    assert np.array_equal(np.load(other), np.zeros(3))  # left alone


def add_bad_files(folder: Path) -> list[str]:
    (folder / "004.jpg").write_bytes(b"not an image")
    truncated = folder / "009.png"
    truncated.write_bytes(truncated.read_bytes()[:80])
    return ["004.jpg", "009.png"]


def test_unreadable_images_are_left_out_with_one_warning_each_and_a_count(folder, tmp_path, caplog):
    bad = add_bad_files(folder)
    dataset = build("imagefolder", folder, resolution=16)
    with caplog.at_level(logging.WARNING, logger="sagan.data"):
        result = cached(dataset, options(folder), tmp_path / "c.npy", progress=False)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3 and all(name in line for name, line in zip(bad, lines))
    assert lines[-1].startswith("skipped 2 unreadable images")
    assert len(result) == 10 and sorted(Path(name).name for name in result.skipped) == bad
    kept = [i for i in range(12) if dataset.name(i) not in result.skipped]
    assert all(torch.equal(result[j][0], dataset[i][0]) for j, i in enumerate(kept))


def test_strict_mode_stops_at_the_first_unreadable_image_and_writes_nothing(folder, tmp_path):
    add_bad_files(folder)
    dataset = build("imagefolder", folder, resolution=16)
    with pytest.raises(DataError, match=r"cannot decode image .*004\.jpg.*\(strict mode"):
        cached(dataset, options(folder), tmp_path / "c.npy", strict=True, progress=False)
    assert list(tmp_path.glob("*c.npy*")) == []  # no file, no temporary file
    cached(dataset, options(folder), tmp_path / "c.npy", progress=False)  # leaves them out
    with pytest.raises(DataError, match=r"c\.npy leaves out 2 unusable images .*strict mode"):
        cached(dataset, options(folder), tmp_path / "c.npy", strict=True, progress=False)


def test_no_usable_image_is_an_error(tmp_path):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.png").write_bytes(b"")
    with pytest.raises(DataError, match=r"none of the 3 images of image folder .* is usable"):
        cached(build("imagefolder", folder, resolution=16), options(folder), tmp_path / "c.npy", progress=False)


def test_training_reads_the_same_items_with_and_without_the_cache(folder, dataset_cache_dir):
    values = {"data.name": "imagefolder", "data.root": str(folder), "data.crop": 18, "data.resolution": 32}
    uncached = load_training_set(tiny_config(**values, **{"data.cache": "off"}), progress=False)
    cached_set = load_training_set(tiny_config(**values), progress=False)
    assert isinstance(uncached, ImageFileDataset) and isinstance(cached_set, CachedDataset)
    assert cached_set.path.parent == dataset_cache_dir
    assert same_items(cached_set, uncached)
    key = config.dataset_options(tiny_config(**values).data)
    assert key["root"] == str(folder.resolve()) and "workers" not in key and "cache" not in key


def test_cli_prepare_then_train_reads_it(folder, tmp_path, capsys):
    out = tmp_path / "prepared.npy"
    args = ["data", "prepare", "imagefolder", "--data-root", str(folder), "--resolution", "32", "--crop", "18",
            "--no-progress"]
    assert main(args + ["--out", str(out)]) == 0
    assert f"sagan: {out} built (no cache yet): 12 images of 32x32x3" in capsys.readouterr().out
    assert main(args + ["--out", str(out)]) == 0
    assert "up to date" in capsys.readouterr().out
    values = {"data.name": "imagefolder", "data.root": str(folder), "data.crop": 18, "data.resolution": 32}
    dataset = load_training_set(tiny_config(**values, **{"data.cache": str(out)}), progress=False)
    assert dataset.path == out and dataset.rebuilt_because is None


@pytest.mark.parametrize("args, message", [
    (["--data-root", "EMPTY"], "no images (.jpg, .jpeg"),
    (["--data-root", "BAD", "--strict"], "cannot decode image"),
    (["--data-root", "NOWHERE"], "data root NOWHERE does not exist"),
])
def test_cli_prepare_mistakes_are_one_line_and_exit_2(tmp_path, capsys, args, message):
    (tmp_path / "EMPTY").mkdir()
    add_bad_files(make_folder(tmp_path / "BAD"))
    args = [str(tmp_path / arg) if arg.isupper() else arg for arg in args]
    assert main(["data", "prepare", "imagefolder", "--no-progress", "--out", str(tmp_path / "c.npy")] + args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("sagan: error: ") and message.replace(
        "NOWHERE", str(tmp_path / "NOWHERE")) in err[0]


def test_archive_members_are_cached_and_a_changed_archive_rebuilt(tmp_path):
    rng = np.random.default_rng(1)
    with zipfile.ZipFile(tmp_path / "img_align_celeba.zip", "w") as archive:
        for number in (1, 2, 3):
            buffer = io.BytesIO()
            Image.fromarray(rng.integers(0, 256, (218, 178, 3), dtype=np.uint8)).save(buffer, "JPEG")
            archive.writestr(f"img_align_celeba/{number:06d}.jpg", buffer.getvalue())
    (tmp_path / "list_eval_partition.txt").write_text("000001.jpg 0\n000002.jpg 0\n000003.jpg 0\n")
    dataset = build("celeba", tmp_path, resolution=16)
    assert not isinstance(dataset.paths, list)  # read from the zip, member by member
    result = cached(dataset, {"name": "celeba"}, tmp_path / "c.npy", progress=False)
    assert same_items(result, dataset)
    os.utime(tmp_path / "img_align_celeba.zip", ns=(1, 1))
    again = cached(build("celeba", tmp_path, resolution=16), {"name": "celeba"}, tmp_path / "c.npy", progress=False)
    assert again.rebuilt_because == "the image files changed since it was made"


@needs_shared_data
def test_real_celeba_sample_cached_equals_decoded(tmp_path):
    root = SHARED_DATA / "celeba-sample"
    dataset = build("celeba", root, resolution=32)
    result = cached(dataset, {"name": "celeba", "root": str(root.resolve())}, tmp_path, workers=2, progress=False)
    assert len(result) == 579 and not result.skipped
    for i in range(0, 579, 29):
        assert torch.equal(result[i][0], dataset[i][0])
    assert json.loads(json.dumps(cache.read_header(result.path)["shape"])) == [579, 32, 32, 3]
