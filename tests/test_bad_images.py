"""Tests for unusual and broken image files: conversions of every pixel format, and unreadable files skipped (or,
in strict mode, reported) without stopping a run."""

import logging
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tiny_config
from PIL import Image

from sagan.cli import main
from sagan.data import ImageFileDataset
from sagan.data.transforms import BadImageError, load_image
from sagan.errors import DataError
from sagan.training.batches import batch_loader
from sagan.training.trainer import train

GRADIENT = np.linspace(0, 65535, 16 * 16).round().astype(np.uint16).reshape(16, 16)
EXPECTED = np.rint(GRADIENT / 257).astype(np.uint8)  # 16 bits scaled to 8, not clipped at 255


def png_rgb16(path: Path, pixels: np.ndarray) -> None:
    """A 48-bit RGB PNG (Pillow cannot write one): uint16 H x W x 3 pixels, big-endian samples."""
    height, width, _ = pixels.shape

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in pixels)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, 2, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


@pytest.mark.parametrize("name, write", [
    ("16-bit.png", lambda path: Image.fromarray(GRADIENT).save(path)),  # opens as I;16
    ("16-bit.pgm", lambda path: Image.fromarray(GRADIENT).save(path)),  # opens as I
    ("16-bit-big-endian.tif", lambda path: Image.fromarray(GRADIENT.astype(">u2")).save(path)),  # I;16B
    ("32-bit.tif", lambda path: Image.fromarray(GRADIENT.astype(np.int32)).save(path)),  # I
])
def test_16_bit_grayscale_is_scaled_to_8_bits(tmp_path, name, write):
    path = tmp_path / name
    write(path)
    assert np.array_equal(load_image(path, 16, 1)[..., 0], EXPECTED)
    assert np.array_equal(load_image(path, 16, 3), np.repeat(EXPECTED[..., None], 3, axis=-1))


def test_48_bit_rgb_png_keeps_its_colours(tmp_path):
    pixels = np.stack([GRADIENT, GRADIENT[::-1], np.full_like(GRADIENT, 128 * 257)], axis=-1)
    png_rgb16(tmp_path / "rgb16.png", pixels)
    image = load_image(tmp_path / "rgb16.png", 16, 3).astype(int)
    assert np.abs(image - np.rint(pixels / 257)).max() <= 1


@pytest.mark.parametrize("scale", [1 / 255, 1.0])  # float images in 0..1, and in 0..255
def test_float_images_are_read_in_either_range(tmp_path, scale):
    Image.fromarray((EXPECTED.astype(np.float32) * scale).astype(np.float32)).save(tmp_path / "float.tif")
    assert Image.open(tmp_path / "float.tif").mode == "F"
    assert np.array_equal(load_image(tmp_path / "float.tif", 16, 1)[..., 0], EXPECTED)


def transparent_gif() -> Image.Image:
    image = Image.new("P", (16, 16), 0)
    image.putpalette([0, 0, 0, 255, 0, 0])
    image.info["transparency"] = 0
    return image


@pytest.mark.parametrize("make, expected", [
    (lambda: Image.new("LA", (16, 16), (200, 0)), 255),  # fully transparent: white, as viewers show it
    (lambda: transparent_gif(), 255),  # palette with a transparent colour: white
    (lambda: Image.new("CMYK", (16, 16), (0, 0, 0, 255)), 0),  # full black ink
])
def test_other_modes_convert(tmp_path, make, expected):
    image = make()
    path = tmp_path / {"CMYK": "image.tif", "P": "image.gif"}.get(image.mode, "image.png")
    image.save(path)
    assert (load_image(path, 8, 1) == expected).all()


def test_decompression_bombs_are_refused_and_large_images_decoded(tmp_path, monkeypatch):
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1000)
    Image.new("RGB", (40, 40), (10, 20, 30)).save(tmp_path / "large.png")  # 1600 px: Pillow warns
    Image.new("RGB", (50, 50)).save(tmp_path / "bomb.png")  # 2500 px: over twice the limit, Pillow refuses
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert (load_image(tmp_path / "large.png", 8, 3) == (10, 20, 30)).all()
    with pytest.raises(BadImageError, match=r"cannot decode image .*bomb\.png: Image size \(2500 pixels\) exceeds"):
        load_image(tmp_path / "bomb.png", 8, 3)


def make_dataset(folder: Path, broken: dict[int, bytes | None], count: int = 6, **kwargs) -> ImageFileDataset:
    """`count` PNGs whose red value is 40 * index, labelled by index; `broken` replaces some of them: with bytes, or
    with None for a truncated PNG."""
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"{i}.png"
        Image.new("RGB", (12, 12), (40 * i, 0, 0)).save(path)
        if i in broken:
            path.write_bytes(path.read_bytes()[:45] if broken[i] is None else broken[i])
        paths.append(path)
    return ImageFileDataset(paths, resolution=8, channels=3, description="test images", labels=range(count),
                            num_classes=count, **({"crop": 0} | kwargs))


def red(item: tuple[torch.Tensor, int]) -> tuple[int, int]:
    image, label = item
    return int(image[0, 0, 0]), label


def test_unreadable_images_are_replaced_by_the_next_usable_one(tmp_path, caplog):
    dataset = make_dataset(tmp_path, {1: b"not an image", 2: None, 5: b""})
    with caplog.at_level(logging.WARNING, logger="sagan.data"):
        assert [red(dataset[i]) for i in range(6)] == [(0, 0), (120, 3), (120, 3), (120, 3), (160, 4), (0, 0)]
        dataset[1]
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 3  # one per file, not one per read
    assert lines[0].startswith("skipped: cannot decode image") and "1.png: cannot identify image file" in lines[0]
    assert "2.png" in lines[1] and "truncated" in lines[1] and "5.png" in lines[2]
    assert sorted(Path(name).name for name in dataset.skipped) == ["1.png", "2.png", "5.png"]


def test_strict_mode_raises_one_line(tmp_path):
    dataset = make_dataset(tmp_path, {2: b"GIF89a garbage"}, strict=True)
    assert red(dataset[1]) == (40, 1)
    with pytest.raises(BadImageError, match=r"^cannot decode image .*2\.png: cannot identify image file [^\n]*$"):
        dataset[2]


@pytest.mark.parametrize("problem, message", [
    (lambda path: path.unlink(), "No such file or directory"),  # deleted after the folder was listed
    (lambda path: Image.new("RGB", (6, 6)).save(path), r"crop 10 is larger than image .*0\.png \(6x6\)"),
])
def test_missing_files_and_images_smaller_than_the_crop_are_skipped(tmp_path, problem, message):
    dataset = make_dataset(tmp_path, {}, crop=10)
    problem(dataset.paths[0])
    assert red(dataset[0]) == (40, 1)
    assert list(dataset.skipped) == [str(dataset.paths[0])]
    with pytest.raises(BadImageError, match=message):
        dataset.load(0)


def test_a_run_of_unusable_images_is_an_error(tmp_path):
    dataset = make_dataset(tmp_path, {i: b"" for i in range(4)}, count=4)
    with pytest.raises(DataError, match=r"test images: the 4 images from .*0\.png on are all unusable; the last: "):
        dataset[0]


def test_loader_workers_skip_bad_files_deterministically(tmp_path):
    dataset = make_dataset(tmp_path, {1: b"junk", 4: None}, count=8)
    serial = [dataset[i] for i in range(8)]
    batches = batch_loader(dataset, batch_size=8, seed=0, start=0, workers=2)
    for _ in range(2):  # two epochs, each a permutation of all 8 items
        images, labels = next(batches)
        got = sorted((int(image[0, 0, 0]), int(label)) for image, label in zip(images, labels))
        assert got == sorted(red(item) for item in serial)


def test_loader_workers_report_strict_errors_in_one_line(tmp_path):
    dataset = make_dataset(tmp_path, {3: b"junk"}, count=4, strict=True)
    with pytest.raises(BadImageError, match=r"^cannot decode image .*3\.png: cannot identify image file [^\n]*$"):
        next(batch_loader(dataset, batch_size=4, seed=0, start=0, workers=2))


def write_folder(folder: Path, bad: str) -> None:
    folder.mkdir()
    for i in range(8):
        Image.new("RGB", (36, 36), (30 * i, 100, 0)).save(folder / f"{i}.png")
    (folder / "3.png").write_bytes(bad.encode())


def test_training_without_the_cache_survives_a_bad_file(tmp_path):
    write_folder(tmp_path / "images", "broken")
    cfg = tiny_config(**{"data.name": "imagefolder", "data.root": str(tmp_path / "images"), "data.cache": "off",
                         "train.steps": 1})
    assert train(cfg, tmp_path / "run", progress=False)["step"] == 1


def test_training_strict_stops_with_one_line_and_exit_2(tmp_path, capsys):
    write_folder(tmp_path / "images", "broken")
    args = ["train", "--preset", "demo", "--data", str(tmp_path / "images"), "--out", str(tmp_path / "run"),
            "--steps", "1", "--batch-size", "8", "--device", "cpu", "--no-progress", "--strict"]
    for cache in ("off", "auto"):
        assert main(args + ["--set", f"data.cache={cache}"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("sagan: error: cannot decode image") and "3.png" in err[0]
