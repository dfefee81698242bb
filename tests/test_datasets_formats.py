"""Tests for the published dataset formats: CIFAR-10 batches, LSUN lmdb, the CelebA zip and attributes, folder
labels, MNIST padding and channels; each built in the test in the official layout."""

import io
import pickle
import struct
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import COLORS, SHARED_DATA, encode, loader_labels, needs_shared_data, solid

from sagan import cli
from sagan.data import build, cifar
from sagan.errors import ConfigError, DataError, MissingPathError

# ---------------------------------------------------------------------------------------------- cifar10


class Python2Pickler(pickle._Pickler):
    """Writes str and bytes as Python 2 strs (BINSTRING), as the cPickle that wrote the official batches did."""

    def save_bytes(self, obj):
        data = obj.encode("latin1") if isinstance(obj, str) else obj
        short = len(data) < 256
        self.write((pickle.SHORT_BINSTRING + bytes([len(data)])) if short else
                   (pickle.BINSTRING + struct.pack("<i", len(data))))
        self.write(data)
        self.memoize(obj)

    dispatch = pickle._Pickler.dispatch | {str: save_bytes, bytes: save_bytes}


def write_cifar_batch(path: Path, images: np.ndarray, labels: list[int]) -> None:
    """A batch as the official files hold it: a Python 2 protocol-2 pickle of a dict with str keys and a uint8
    N x 3072 array, referring to numpy.core.multiarray as NumPy 1 did."""
    rows = images.transpose(0, 3, 1, 2).reshape(len(images), -1)  # red plane, green plane, blue plane
    batch = {"batch_label": "training batch 1 of 5", "labels": labels, "data": rows,
             "filenames": [f"img{i}.png" for i in range(len(images))]}
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(batch)
    path.write_bytes(buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n"))


@pytest.fixture
def cifar_root(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i, name in enumerate(cifar.BATCHES["train"] + cifar.BATCHES["test"]):
        images = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
        write_cifar_batch(folder / name, images, [i, 9 - i])
    return tmp_path


def test_cifar10_splits_and_labels(cifar_root):
    train, test, both = (build("cifar10", cifar_root, split=s) for s in ("train", "test", "all"))
    assert (len(train), len(test), len(both)) == (10, 2, 12)
    assert [train[i][1] for i in range(10)] == [0, 9, 1, 8, 2, 7, 3, 6, 4, 5]
    assert [test[i][1] for i in range(2)] == [5, 4]
    assert train.num_classes == 10 and train.description == "cifar10 train split, 10 images"


def test_cifar10_pixels_are_decoded_plane_by_plane(cifar_root):
    images = np.random.default_rng(1).integers(0, 256, (3, 32, 32, 3), dtype=np.uint8)
    write_cifar_batch(cifar_root / "cifar-10-batches-py" / "test_batch", images, [1, 2, 3])
    dataset = build("cifar10", cifar_root, split="test")
    assert torch.equal(dataset[2][0], torch.from_numpy(images[2].transpose(2, 0, 1)))
    gray, _ = build("cifar10", cifar_root, split="test", channels=1, resolution=64)[0]
    assert gray.shape == (1, 64, 64)


def test_cifar10_root_may_be_the_batches_folder(cifar_root):
    assert len(build("cifar10", cifar_root / "cifar-10-batches-py", split="test")) == 2


def test_cifar10_layout_errors(cifar_root, tmp_path):
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'} has no cifar-10-batches-py/ folder: expected"):
        (tmp_path / "empty").mkdir()
        build("cifar10", tmp_path / "empty")
    (cifar_root / "cifar-10-batches-py" / "data_batch_3").unlink()
    with pytest.raises(MissingPathError, match="missing CIFAR-10 batch .*data_batch_3"):
        build("cifar10", cifar_root)
    with pytest.raises(DataError, match="cifar10 has no split 'valid'"):
        build("cifar10", cifar_root, split="valid")


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


@pytest.mark.parametrize("content, message", [
    (pickle.dumps({b"data": Evil()}, protocol=2), "refers to __builtin__.print, which a CIFAR batch never holds"),
    (b"not a pickle", "cannot read CIFAR-10 batch"),
    (pickle.dumps({b"data": np.zeros((2, 10), np.uint8), b"labels": [0, 1]}), "is not a CIFAR-10 python batch"),
    (pickle.dumps({b"data": np.zeros((2, 3072), np.uint8), b"labels": [0]}), "holds 2 images but 1 labels"),
    (pickle.dumps({b"data": np.zeros((1, 3072), np.uint8), b"labels": [10]}), "holds label 10; expected 0 to 9"),
])
def test_cifar10_bad_batches_are_refused_without_running_them(cifar_root, capsys, content, message):
    (cifar_root / "cifar-10-batches-py" / "test_batch").write_bytes(content)
    with pytest.raises(DataError, match=message):
        build("cifar10", cifar_root, split="test")
    assert "pwned" not in capsys.readouterr().out


# ---------------------------------------------------------------------------------------------- celeba


def make_celeba(root: Path, count: int, *, zipped: bool) -> Path:
    """The official layout for images 000001.jpg ... with partitions train, train, valid, test, train, ...; the
    images in img_align_celeba/ or in the published zip, whose members sit in an img_align_celeba/ folder."""
    root.mkdir()
    names = [f"{i:06d}.jpg" for i in range(1, count + 1)]
    images = {name: encode(solid(COLORS[i % 5], (178, 218)), "JPEG") for i, name in enumerate(names)}
    if zipped:
        with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as z:
            for name, data in images.items():
                z.writestr(f"img_align_celeba/{name}", data)
    else:
        (root / "img_align_celeba").mkdir()
        for name, data in images.items():
            (root / "img_align_celeba" / name).write_bytes(data)
    parts = [(0, 0, 1, 2)[i % 4] for i in range(count)]
    rows = "".join(f"{name} {part}\r\n" for name, part in zip(names, parts, strict=True))
    (root / "list_eval_partition.txt").write_bytes(rows.encode())
    header = f"{count}\r\n5_o_Clock_Shadow Smiling Young \r\n"
    rows = "".join(f"{n} -1  {1 if i % 3 == 0 else -1}  1\r\n" for i, n in enumerate(names))
    (root / "list_attr_celeba.txt").write_bytes((header + rows).encode())
    return root


def test_celeba_zip_gives_the_same_items_as_the_folder(tmp_path):
    folder = build("celeba", make_celeba(tmp_path / "folder", 8, zipped=False), split="all")
    archive = build("celeba", make_celeba(tmp_path / "zip", 8, zipped=True), split="all")
    assert len(archive) == len(folder) == 8
    for i in (0, 5, 7):
        assert torch.equal(archive[i][0], folder[i][0])


def test_celeba_zip_works_with_worker_processes(tmp_path):
    dataset = build("celeba", make_celeba(tmp_path / "zip", 8, zipped=True), split="all", attribute="Smiling")
    dataset[3]  # opens the zip in this process first
    assert loader_labels(dataset, workers=2) == loader_labels(dataset, workers=0) == [1, 0, 0, 1, 0, 0, 1, 0]


def test_celeba_zip_names_missing_members(tmp_path):
    root = make_celeba(tmp_path / "zip", 4, zipped=True)
    with (root / "list_eval_partition.txt").open("ab") as f:
        f.write(b"000009.jpg 0\r\n")
    with pytest.raises(DataError, match=r"1 of the 3 images .* missing from .*img_align_celeba.zip, the first being "
                                        r"000009.jpg"):
        build("celeba", root)


@pytest.mark.parametrize("split, labels", [("train", [1, 0, 0, 0]), ("valid", [0]), ("test", [1])])
def test_celeba_attribute_labels(tmp_path, split, labels):
    dataset = build("celeba", make_celeba(tmp_path / "c", 6, zipped=False), split=split, attribute="Smiling")
    assert dataset.num_classes == 2
    assert [dataset[i][1] for i in range(len(dataset))] == labels
    assert f"labelled by Smiling (1: {sum(labels)}, 0: {len(labels) - sum(labels)})" in dataset.description


def test_celeba_attribute_errors(tmp_path):
    root = make_celeba(tmp_path / "c", 4, zipped=False)
    with pytest.raises(DataError, match="has no attribute 'smiling'; did you mean Smiling?"):
        build("celeba", root, attribute="smiling")
    with pytest.raises(DataError, match="has no attribute 'Bald'; choose from 5_o_Clock_Shadow, Smiling, Young"):
        build("celeba", root, attribute="Bald")
    (root / "list_attr_celeba.txt").write_bytes(b"2\r\nSmiling\r\n000001.jpg 1\r\n000002.jpg 0\r\n")
    with pytest.raises(DataError, match=r"list_attr_celeba.txt, line 4: expected an image name and 1 attribute values"):
        build("celeba", root, attribute="Smiling")
    (root / "list_attr_celeba.txt").write_bytes(b"1\r\nSmiling\r\n000001.jpg 1\r\n")
    with pytest.raises(DataError, match="list_attr_celeba.txt has no row for 1 of the 2 images, the first being "
                                        "000002.jpg"):
        build("celeba", root, attribute="Smiling")
    (root / "list_attr_celeba.txt").unlink()
    with pytest.raises(MissingPathError, match="data.attribute needs .*list_attr_celeba.txt"):
        build("celeba", root, attribute="Smiling")
    with pytest.raises(ConfigError, match="data.attribute=Smiling applies to celeba, not to imagefolder"):
        build("imagefolder", root, attribute="Smiling")


@needs_shared_data
def test_real_celeba_attributes():
    root = SHARED_DATA / "celeba-sample"
    dataset = build("celeba", root, attribute="Smiling")
    assert len(dataset) == 579 and dataset.num_classes == 2
    lines = (root / "list_attr_celeba.txt").read_text().splitlines()
    column = lines[1].split().index("Smiling") + 1
    expected = [int(line.split()[column] == "1") for line in lines[2:]]
    assert [dataset.labels[i] for i in range(len(dataset))] == expected and 0 < sum(expected) < 579
    assert dataset[10][1] == expected[10]


@needs_shared_data
def test_real_celeba_sample_zipped_as_published(tmp_path):
    sample = SHARED_DATA / "celeba-sample"
    root = tmp_path / "celeba"
    root.mkdir()
    (root / "list_eval_partition.txt").write_bytes((sample / "list_eval_partition.txt").read_bytes())
    with zipfile.ZipFile(root / "img_align_celeba.zip", "w") as z:  # the published zip stores the JPEGs as they are
        for path in sorted((sample / "img_align_celeba").iterdir()):
            z.write(path, f"img_align_celeba/{path.name}")
    archive, folder = build("celeba", root, resolution=64), build("celeba", sample, resolution=64)
    assert len(archive) == 579
    for i in (0, 300, 578):
        assert torch.equal(archive[i][0], folder[i][0])


def test_archive_fingerprints_follow_the_members_and_the_file(tmp_path):
    root = make_celeba(tmp_path / "zip", 8, zipped=True)
    train, valid = (build("celeba", root, split=s).paths for s in ("train", "valid"))
    assert train.fingerprint() != valid.fingerprint()
    before = train.fingerprint()
    with zipfile.ZipFile(root / "img_align_celeba.zip", "a") as z:
        z.writestr("extra.txt", "changed")
    assert build("celeba", root, split="train").paths.fingerprint() != before


# ---------------------------------------------------------------------------------------------- imagefolder labels


def test_imagefolder_folder_labels_are_sorted_first_level_folders(tmp_path):
    for wnid, count in [("n02", 2), ("n01", 1), ("n10", 1)]:
        (tmp_path / wnid / "sub").mkdir(parents=True)
        for i in range(count):
            solid(COLORS[i]).save(tmp_path / wnid / ("sub" if i else ".") / f"{wnid}_{i}.JPEG")
    dataset = build("imagefolder", tmp_path, labels="folders")
    assert dataset.num_classes == 3 and "in 3 classes (folders n01 ... n10)" in dataset.description
    assert sorted(loader_labels(dataset, workers=0)) == [0, 1, 1, 2]
    assert build("imagefolder", tmp_path).num_classes == 0


def test_imagefolder_folder_label_errors(tmp_path):
    (tmp_path / "a").mkdir()
    solid(COLORS[0]).save(tmp_path / "a" / "x.png")
    (tmp_path / "b").mkdir()
    with pytest.raises(DataError, match=f"class folder {tmp_path / 'b'} holds no images"):
        build("imagefolder", tmp_path, labels="folders")
    solid(COLORS[0]).save(tmp_path / "loose.png")
    with pytest.raises(DataError, match="needs every image inside a class folder of .*, but loose.png is directly"):
        build("imagefolder", tmp_path, labels="folders")


def test_folder_labels_train_a_conditional_model(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SAGAN_CACHE", str(tmp_path / "cache"))  # keep any dataset cache inside the test
    for k in range(2):
        (tmp_path / "images" / f"class{k}").mkdir(parents=True)
        for i in range(4):
            solid(COLORS[k + i % 2], (36, 36)).save(tmp_path / "images" / f"class{k}" / f"{i}.png")
    args = ["train", "--preset", "demo", "--data", str(tmp_path / "images"), "--out", str(tmp_path / "run"),
            "--steps", "1", "--no-progress", "--set", "data.labels=folders", "--set", "model.num_classes=2",
            "--set", "data.workers=0"]
    for key, value in [("model.g_channels", 8), ("model.d_channels", 8), ("model.z_dim", 8),
                       ("train.batch_size", 4), ("train.num_samples", 4), ("train.device", "cpu")]:
        args += ["--set", f"{key}={value}"]
    assert cli.main(args) == 0
    assert "labels: folders" in (tmp_path / "run" / "config.yaml").read_text()
    assert cli.main(args + ["--out", str(tmp_path / "run2"), "--set", "model.num_classes=0"]) == 2
    assert "data.labels=folders labels the images, but model.num_classes is 0" in capsys.readouterr().err
    assert cli.main(args + ["--out", str(tmp_path / "run3"), "--set", "model.num_classes=3"]) == 2
    err = capsys.readouterr().err
    assert "model.num_classes is 3 but the dataset" in err and "has 2 classes" in err


# ---------------------------------------------------------------------------------------------- mnist


@needs_shared_data
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_mnist_padded_or_resized_in_1_or_3_channels(name):
    raw = build(name, SHARED_DATA / name, split="test", channels=1, resolution=32, crop=28, pad=False)
    padded = build(name, SHARED_DATA / name, split="test", channels=3)
    resized = build(name, SHARED_DATA / name, split="test", channels=1, pad=False)
    image, label = padded[7]
    assert image.shape == (3, 32, 32) and torch.equal(image[0], image[2]) and image[:, :2].sum() == 0
    assert resized[7][0].shape == (1, 32, 32) and resized[7][1] == label
    assert not torch.equal(resized[7][0][0], image[0])  # resampled, not shifted
    assert raw[7][0].shape == (1, 32, 32)


def test_new_datasets_give_one_or_three_channels(cifar_root, tmp_path):
    roots = {"cifar10": cifar_root, "celeba": make_celeba(tmp_path / "celeba", 4, zipped=True)}
    for name, root in roots.items():
        for channels in (1, 3):
            image, _ = build(name, root, split="train", channels=channels, resolution=32)[0]
            assert image.shape == (channels, 32, 32), name


# ---------------------------------------------------------------------------------------------- command line


def test_data_info_describes_a_dataset(cifar_root, capsys):
    assert cli.main(["data", "info", "cifar10", "--data-root", str(cifar_root), "--split", "all",
                     "--set", "data.channels=1", "--set", "data.resolution=64"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == ["cifar10 all splits, 12 images",
                       "images: 12, each 1 x 64 x 64 uint8 (channels x height x width)",
                       "classes: 10 (train conditionally with --set model.num_classes=10)"]
    assert out[3].startswith("source: https://www.cs.toronto.edu/")


def broken_roots(tmp_path: Path) -> list[tuple[list[str], str]]:
    """(sagan data info arguments, the start of the expected error) for each kind of broken dataset."""
    celeba = make_celeba(tmp_path / "celeba", 4, zipped=False)
    (celeba / "img_align_celeba" / "000002.jpg").unlink()
    (tmp_path / "empty").mkdir()
    missing = tmp_path / "missing"
    return [
        (["celeba", "--data-root", str(missing)], f"data root {missing} does not exist"),
        (["celeba", "--data-root", str(tmp_path / "empty")], f"{tmp_path / 'empty'} has no img_align_celeba/ folder"),
        (["celeba", "--data-root", str(celeba)], "1 of the 2 images that"),
        (["celeba", "--data-root", str(celeba), "--split", "valid", "--set", "data.attribute=smile"],
         "data.attribute: "),
        (["imagefolder", "--data-root", str(tmp_path / "empty")], "no images (.jpg"),
        (["cifar10", "--data-root", str(tmp_path / "empty")], f"{tmp_path / 'empty'} has no cifar-10-batches-py/"),
        (["mnist", "--data-root", str(tmp_path / "empty")], f"missing {tmp_path / 'empty'}/train-images-idx3-ubyte"),
        (["lsun", "--data-root", str(tmp_path / "empty")], f"data root {tmp_path / 'empty'} has no data.mdb"),
        (["imagefolder", "--data-root", str(celeba), "--set", "data.labels=classes"], "data.labels: 'classes' is not"),
        (["mnist", "--data-root", str(celeba), "--set", "data.labels=folders"], ("data.labels=folders applies to "
                                                                                "imagefolder, not to mnist")),
    ]


def test_dataset_mistakes_are_one_line_and_exit_2(tmp_path, capsys):
    for args, message in broken_roots(tmp_path):
        assert cli.main(["data", "info", *args]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith(f"sagan: error: {message}") and err.count("\n") == 1, (args, err)


def test_train_reports_dataset_mistakes_in_one_line(tmp_path, capsys):
    args, message = broken_roots(tmp_path)[2]
    assert cli.main(["train", "--data", args[0], "--data-root", args[2], "--no-progress",
                     "--out", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"sagan: error: {message}") and err.count("\n") == 1
