"""Tests for sagan.data: every dataset's item format, the pixel conversions and the error messages."""

import gzip
import lzma
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import BLUE, RED, SHARED_DATA, luma, make_celeba, needs_shared_data, write_idx
from PIL import Image, features
from torch.utils.data import DataLoader

from sagan.data import build, embedded, idx
from sagan.data.arrays import ArrayDataset
from sagan.errors import ConfigError, DataError, MissingPathError


def check_items(dataset, resolution: int, channels: int, num_classes: int) -> None:
    """The first and last items have the promised format."""
    assert dataset.num_classes == num_classes
    assert isinstance(dataset.description, str) and dataset.description
    for index in (0, len(dataset) - 1):
        image, label = dataset[index]
        assert image.shape == (channels, resolution, resolution)
        assert image.dtype == torch.uint8
        assert type(label) is int and 0 <= label < max(num_classes, 1)


# ---------------------------------------------------------------------------------------------- registry


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(DataError, match="unknown dataset 'cifar'; choose from embedded, imagefolder, celeba, mnist"):
        build("cifar")


@pytest.mark.parametrize("options", [{"channels": 2}, {"resolution": 0}, {"crop": -1}])
def test_invalid_options_are_config_errors(options):
    with pytest.raises(ConfigError):
        build("embedded", **options)


# ---------------------------------------------------------------------------------------------- embedded


@pytest.fixture(scope="module")
def embedded_rgb():
    return build("embedded")


def test_embedded_needs_no_root(embedded_rgb):
    check_items(embedded_rgb, 32, 3, 10)
    assert len(embedded_rgb) == 20000
    assert "Fashion-MNIST subset" in embedded_rgb.description


@pytest.mark.parametrize("resolution, channels", [(32, 1), (64, 3), (128, 1)])
def test_embedded_resolution_and_channels(resolution, channels):
    check_items(build("embedded", resolution=resolution, channels=channels), resolution, channels, 10)


def test_embedded_assets_fit_in_8_mb_with_their_license():
    assets = embedded.ASSETS
    assert sum(path.stat().st_size for path in assets.iterdir()) < 8_000_000
    assert "Zalando SE" in (assets / "FASHION_MNIST_LICENSE").read_text()
    assert (assets / "README.md").is_file()


def test_embedded_is_class_balanced():
    assert np.bincount(idx.read_labels(embedded.LABELS_FILE)).tolist() == [2000] * 10


def test_embedded_rejects_other_splits():
    with pytest.raises(DataError, match="choose from train, all"):
        build("embedded", split="test")


@needs_shared_data
def test_embedded_is_the_first_2000_training_images_of_each_class():
    source = SHARED_DATA / "fashion-mnist"
    images = idx.read_images(source / "train-images-idx3-ubyte.gz")
    labels = idx.read_labels(source / "train-labels-idx1-ubyte.gz")
    keep = np.sort(np.concatenate([np.flatnonzero(labels == c)[:2000] for c in range(10)]))
    assert np.array_equal(idx.read_images(embedded.IMAGES_FILE), images[keep])
    assert np.array_equal(idx.read_labels(embedded.LABELS_FILE), labels[keep])


# ---------------------------------------------------------------------------------------------- arrays


def test_28x28_images_are_padded_to_32_with_the_pixels_in_the_centre():
    images = np.random.default_rng(0).integers(1, 256, (4, 28, 28, 1), dtype=np.uint8)
    dataset = ArrayDataset(images, None, resolution=32, channels=1, num_classes=0, description="random")
    image, label = dataset[2]
    assert label == 0
    assert torch.equal(image[0, 2:30, 2:30], torch.from_numpy(images[2, :, :, 0]))
    assert image.sum() == image[0, 2:30, 2:30].sum()  # the 2 px border is zero


def test_embedded_items_are_the_stored_pixels_padded(embedded_rgb):
    stored = idx.read_images(embedded.IMAGES_FILE)
    image, label = embedded_rgb[5]
    assert label == idx.read_labels(embedded.LABELS_FILE)[5]
    for channel in image:
        assert np.array_equal(channel[2:30, 2:30].numpy(), stored[5])


def test_other_resolutions_resize_instead_of_padding():
    images = np.full((2, 28, 28, 1), 200, dtype=np.uint8)
    image, _ = ArrayDataset(images, None, resolution=64, channels=1, num_classes=0, description="flat")[0]
    assert image.shape == (1, 64, 64) and bool((image == 200).all())


def test_array_crop_takes_the_centre():
    images = np.zeros((1, 28, 28, 1), dtype=np.uint8)
    images[:, 4:24, 4:24] = 255
    image, _ = ArrayDataset(images, None, resolution=20, channels=1, crop=20, num_classes=0, description="x")[0]
    assert bool((image == 255).all())
    with pytest.raises(DataError, match="crop 30 is larger than the images of x"):
        ArrayDataset(images, None, resolution=32, channels=1, crop=30, num_classes=0, description="x")


def test_gray_arrays_become_rgb_by_repeating():
    images = np.random.default_rng(1).integers(0, 256, (2, 32, 32, 1), dtype=np.uint8)
    image, _ = ArrayDataset(images, None, resolution=32, channels=3, num_classes=0, description="gray")[1]
    assert all(torch.equal(channel, torch.from_numpy(images[1, :, :, 0])) for channel in image)


def test_rgb_arrays_become_gray_exactly_as_pillow_converts_them():
    images = np.random.default_rng(2).integers(0, 256, (2, 16, 16, 3), dtype=np.uint8)
    image, _ = ArrayDataset(images, None, resolution=16, channels=1, num_classes=0, description="rgb")[1]
    assert np.array_equal(image[0].numpy(), np.asarray(Image.fromarray(images[1]).convert("L")))


def test_items_are_copies():
    images = np.zeros((1, 32, 32, 1), dtype=np.uint8)
    dataset = ArrayDataset(images, np.array([3]), resolution=32, channels=1, num_classes=4, description="zeros")
    image, label = dataset[0]
    image += 1
    assert label == 3 and images.sum() == 0


def test_datasets_batch_with_the_default_collate(embedded_rgb, celeba_root):
    for dataset in (embedded_rgb, build("celeba", celeba_root, split="all")):
        images, labels = next(iter(DataLoader(dataset, batch_size=4)))
        assert images.shape == (4, 3, 32, 32) and images.dtype == torch.uint8 and labels.dtype == torch.int64


# ---------------------------------------------------------------------------------------------- imagefolder


def test_imagefolder_searches_recursively_for_image_extensions(tmp_path):
    names = ["a.png", "b/c.JPG", "b/d/e.jpeg", "f.Bmp", "g.tiff", "h.gif"]
    if features.check("webp"):
        names.append("b/i.webp")
    for name in names:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (20, 10), BLUE).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / "._a.png").write_bytes(b"macOS metadata")
    (tmp_path / ".thumbnails").mkdir()
    Image.new("RGB", (4, 4)).save(tmp_path / ".thumbnails" / "a.png")

    dataset = build("imagefolder", tmp_path, resolution=16, channels=1)
    assert dataset.paths == sorted(tmp_path / name for name in names)
    assert f"image folder {tmp_path}, {len(names)} images" == dataset.description
    check_items(dataset, 16, 1, 0)
    for i in range(len(dataset)):
        assert (dataset[i][0].int() - luma(BLUE)).abs().max() <= 3  # lossy JPEG and WebP


def test_imagefolder_errors_name_the_folder(tmp_path):
    with pytest.raises(MissingPathError, match=f"data root {tmp_path / 'nowhere'} does not exist"):
        build("imagefolder", tmp_path / "nowhere")
    (tmp_path / "notes.txt").write_text("not an image")
    with pytest.raises(DataError, match=rf"no images \(\.jpg, \.jpeg, .*\) found under {tmp_path}"):
        build("imagefolder", tmp_path)
    with pytest.raises(DataError, match="is not a folder"):
        build("imagefolder", tmp_path / "notes.txt")
    with pytest.raises(DataError, match="needs a data root"):
        build("imagefolder")


# ---------------------------------------------------------------------------------------------- celeba


@pytest.fixture
def celeba_root(tmp_path):
    return make_celeba(tmp_path / "celeba", {1: 0, 2: 0, 3: 0, 4: 1, 5: 1, 6: 2})


@pytest.mark.parametrize("split, count", [("train", 3), ("valid", 2), ("test", 1), ("all", 6)])
def test_celeba_splits(celeba_root, split, count):
    dataset = build("celeba", celeba_root, split=split, resolution=32)
    assert len(dataset) == count
    check_items(dataset, 32, 3, 0)
    assert dataset.description.startswith("celeba ") and dataset.description.endswith(f", {count} images")


def test_celeba_crops_178_pixels_by_default(celeba_root):
    default = build("celeba", celeba_root)[0][0]
    assert torch.equal(default, build("celeba", celeba_root, crop=178)[0][0])
    assert torch.equal(default, build("imagefolder", celeba_root)[0][0])  # the largest square is 178 px too
    assert (default[2].int() - default[0].int()).min() > 100  # blue everywhere: the red bands were cut off


def test_celeba_rejects_unknown_splits(celeba_root):
    with pytest.raises(DataError, match="celeba has no split 'val'; choose from train, valid, test, all"):
        build("celeba", celeba_root, split="val")


def test_celeba_layout_errors_name_the_path(tmp_path, celeba_root):
    with pytest.raises(MissingPathError, match=str(tmp_path / "nowhere")):
        build("celeba", tmp_path / "nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'} has no img_align_celeba/ folder: expected the "
                                        "official CelebA layout"):
        build("celeba", tmp_path / "empty")
    (celeba_root / "list_eval_partition.txt").unlink()
    with pytest.raises(DataError, match="has no list_eval_partition.txt: expected the official CelebA layout"):
        build("celeba", celeba_root)


def test_celeba_names_missing_images(celeba_root):
    (celeba_root / "img_align_celeba" / "000002.jpg").unlink()
    (celeba_root / "img_align_celeba" / "000003.jpg").unlink()
    with pytest.raises(DataError, match="2 of the 3 images .* the first being 000002.jpg"):
        build("celeba", celeba_root)
    assert len(build("celeba", celeba_root, split="valid")) == 2


def test_celeba_empty_split_says_what_the_file_holds(tmp_path):
    root = make_celeba(tmp_path, {1: 0, 2: 0})
    with pytest.raises(DataError, match="no test images .* lists 2 train, 0 valid, 0 test images"):
        build("celeba", root, split="test")


def test_celeba_malformed_partition_line(celeba_root):
    with (celeba_root / "list_eval_partition.txt").open("ab") as f:
        f.write(b"000007.jpg train\r\n")
    with pytest.raises(DataError, match="list_eval_partition.txt, line 7"):
        build("celeba", celeba_root)


@needs_shared_data
def test_real_celeba_sample():
    root = SHARED_DATA / "celeba-sample"
    dataset = build("celeba", root, resolution=64)
    assert len(dataset) == 579 and dataset.description == "celeba train split, 579 images"
    check_items(dataset, 64, 3, 0)
    with pytest.raises(DataError, match="no valid images .* lists 579 train, 0 valid, 0 test images"):
        build("celeba", root, split="valid")


# ---------------------------------------------------------------------------------------------- mnist


@pytest.fixture
def mnist_root(tmp_path):
    rng = np.random.default_rng(3)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", rng.integers(0, 256, (5, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", np.arange(5, dtype=np.uint8))
    write_idx(tmp_path / "t10k-images-idx3-ubyte", rng.integers(0, 256, (3, 28, 28), dtype=np.uint8))
    write_idx(tmp_path / "t10k-labels-idx1-ubyte", np.array([9, 8, 7], dtype=np.uint8))
    return tmp_path


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("split, labels", [("train", [0, 1, 2, 3, 4]), ("test", [9, 8, 7]),
                                           ("all", [0, 1, 2, 3, 4, 9, 8, 7])])
def test_mnist_splits_gzipped_or_not(mnist_root, name, split, labels):
    dataset = build(name, mnist_root, split=split)
    assert [dataset[i][1] for i in range(len(dataset))] == labels
    assert dataset.description.startswith(name)
    check_items(dataset, 32, 3, 10)


def test_idx_round_trip_through_xz(tmp_path):
    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    (tmp_path / "images.xz").write_bytes(lzma.compress(idx.encode(images)))
    assert np.array_equal(idx.read_images(tmp_path / "images.xz"), images)


def test_mnist_missing_file_is_named(mnist_root):
    (mnist_root / "t10k-labels-idx1-ubyte").unlink()
    with pytest.raises(MissingPathError, match=rf"{mnist_root / 't10k-labels-idx1-ubyte'}\.gz"):
        build("mnist", mnist_root, split="test")


@pytest.mark.parametrize("corrupt, message", [
    (lambda data: data[:-10], "holds 2358 bytes, but its header promises 2368"),
    (lambda data: (2049).to_bytes(4, "big") + data[4:], "is not an IDX image file: its magic number is 2049"),
    (lambda data: b"", "is not an IDX image file: its magic number is 0, expected 2051"),
])
def test_mnist_corrupt_images_are_data_errors(mnist_root, corrupt, message):
    path = mnist_root / "t10k-images-idx3-ubyte"
    path.write_bytes(corrupt(path.read_bytes()))
    with pytest.raises(DataError, match=f"{path} {message}"):
        build("mnist", mnist_root, split="test")


def test_mnist_corrupt_gzip_is_a_data_error(mnist_root):
    path = mnist_root / "train-images-idx3-ubyte.gz"
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(DataError, match=f"cannot read {path}"):
        build("mnist", mnist_root)


def test_mnist_label_count_and_range_are_checked(mnist_root):
    write_idx(mnist_root / "t10k-labels-idx1-ubyte", np.array([1, 2], dtype=np.uint8))
    with pytest.raises(DataError, match="holds 3 images but .* holds 2 labels"):
        build("mnist", mnist_root, split="test")
    write_idx(mnist_root / "t10k-labels-idx1-ubyte", np.array([1, 2, 10], dtype=np.uint8))
    with pytest.raises(DataError, match="holds label 10; expected 0 to 9"):
        build("mnist", mnist_root, split="test")


def test_mnist_rejects_unknown_splits(mnist_root):
    with pytest.raises(DataError, match="mnist has no split 'valid'; choose from train, test, all"):
        build("mnist", mnist_root, split="valid")


@needs_shared_data
@pytest.mark.parametrize("name, split, count", [("mnist", "train", 60000), ("fashion-mnist", "test", 10000)])
def test_real_mnist_files(name, split, count):
    dataset = build(name, SHARED_DATA / name, split=split, channels=1)
    assert len(dataset) == count
    check_items(dataset, 32, 1, 10)
    prefix = "train" if split == "train" else "t10k"
    raw = idx.read_images(SHARED_DATA / name / f"{prefix}-images-idx3-ubyte.gz")
    image, label = dataset[count - 1]
    assert np.array_equal(image[0, 2:30, 2:30].numpy(), raw[-1])
    assert label == idx.read_labels(SHARED_DATA / name / f"{prefix}-labels-idx1-ubyte.gz")[-1]
