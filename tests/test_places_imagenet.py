"""Places365-Standard and ILSVRC-2012 in their official layouts, on made fixtures of a few classes."""

import csv
import hashlib
import importlib.util

import numpy as np
import pytest
from conftest import COLORS, error_line, solid

from sagan import api, data
from sagan.cli import main
from sagan.errors import DataError

PLACES = ["/a/airfield", "/a/airplane_cabin", "/b/badlands"]  # the first categories' names; 365 in all


def places_root(tmp_path, size="256"):
    root = tmp_path / "places"
    root.mkdir()
    names = PLACES + [f"/z/made_{i}" for i in range(len(PLACES), 365)]
    (root / "categories_places365.txt").write_text("".join(f"{n} {i}\n" for i, n in enumerate(names)))
    train_rows = []
    for label, name in enumerate(PLACES):
        for k in range(2):
            path = root / f"data_{size}" / name.lstrip("/") / f"{k + 1:08d}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            solid(COLORS[label], (40, 40)).save(path)
            train_rows.append(f"{name}/{k + 1:08d}.jpg {label}")
    (root / "places365_train_standard.txt").write_text("\n".join(train_rows) + "\n")
    (root / f"val_{size}").mkdir()
    val_rows = []
    for i, label in enumerate([2, 0, 1], 1):
        solid(COLORS[label], (40, 40)).save(root / f"val_{size}" / f"Places365_val_{i:08d}.jpg")
        val_rows.append(f"Places365_val_{i:08d}.jpg {label}")
    (root / "places365_val.txt").write_text("\n".join(val_rows) + "\n")
    return root


def labels(dataset) -> list[int]:
    return [int(dataset[i][1]) for i in range(len(dataset))]


@pytest.mark.parametrize("size", ["256", "large"])
def test_places365_splits_and_labels(tmp_path, size):
    root = places_root(tmp_path, size)
    train = data.build("places365", root, split="train", resolution=32)
    assert (len(train), train.num_classes, labels(train)) == (6, 365, [0, 0, 1, 1, 2, 2])
    image, _ = train[2]
    assert image.shape == (3, 32, 32) and tuple(image[:, 16, 16].tolist()) == pytest.approx(COLORS[1], abs=3)
    val = data.build("places365", root, split="val", resolution=32)
    assert labels(val) == [2, 0, 1]
    assert len(data.build("places365", root, split="all", resolution=32)) == 9
    assert train.description == "places365 train split, 6 images"


def test_places365_layout_errors_name_the_file_and_line(tmp_path):
    root = places_root(tmp_path)
    with open(root / "places365_val.txt", "a") as f:
        f.write("Places365_val_00000004.jpg three\n")
    with pytest.raises(DataError, match=r"places365_val.txt, line 4: expected '<image> <class 0-364>', found "
                                        r"'Places365_val_00000004.jpg three'"):
        data.build("places365", root, split="val")
    (root / "places365_train_standard.txt").unlink()
    with pytest.raises(DataError, match=r"places365_train_standard.txt does not exist: expected Places365-Standard"):
        data.build("places365", root, split="train")
    (root / "categories_places365.txt").write_text("/a/airfield 0\n")
    with pytest.raises(DataError, match="expected each class 0-364 once, found 1"):
        data.build("places365", root, split="val")


def imagenet_root(tmp_path, val="csv"):
    root = tmp_path / "imagenet"
    synsets = ["n01440764", "n01443537", "n01484850"]  # given in another order: the classes are sorted
    for label, synset in sorted(enumerate(synsets), key=lambda x: -x[0]):
        for k in range(2):
            path = root / "train" / synset / f"{synset}_{k}.JPEG"
            path.parent.mkdir(parents=True, exist_ok=True)
            solid(COLORS[label], (40, 40)).save(path, format="JPEG")
    truth = [2, 0, 1, 0]
    for i, label in enumerate(truth, 1):
        folder = root / "val" / (synsets[label] if val == "folders" else "")
        folder.mkdir(parents=True, exist_ok=True)
        solid(COLORS[label], (40, 40)).save(folder / f"ILSVRC2012_val_{i:08d}.JPEG", format="JPEG")
    if val == "csv":
        with open(root / "LOC_val_solution.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["ImageId", "PredictionString"])
            for i, label in reversed(list(enumerate(truth, 1))):  # any row order
                writer.writerow([f"ILSVRC2012_val_{i:08d}", f"{synsets[label]} 1 2 30 40 {synsets[label]} 3 4 5 6"])
    if val == "devkit":  # meta.mat numbers the synsets in its own order, and lists non-leaf ones too
        from scipy.io import savemat

        ids = {synsets[2]: 1, synsets[0]: 2, synsets[1]: 3}
        rows = [(ids[synset], synset) for synset in synsets] + [(1001, "n00001740")]
        table = np.array(rows, dtype=[("ILSVRC2012_ID", "O"), ("WNID", "O")])
        (root / "ILSVRC2012_devkit_t12" / "data").mkdir(parents=True)
        savemat(root / "ILSVRC2012_devkit_t12" / "data" / "meta.mat", {"synsets": table})
        (root / "ILSVRC2012_devkit_t12" / "data" / "ILSVRC2012_validation_ground_truth.txt").write_text(
            "".join(f"{ids[synsets[label]]}\n" for label in truth))
    return root


@pytest.mark.parametrize("val", ["csv", "folders", pytest.param("devkit", marks=pytest.mark.skipif(
    importlib.util.find_spec("scipy") is None, reason="reading the devkit's meta.mat needs scipy"))])
def test_imagenet_classes_are_the_sorted_synsets(tmp_path, val):
    root = imagenet_root(tmp_path, val)
    train = data.build("imagenet", root, split="train", resolution=32)
    assert (len(train), train.num_classes, labels(train)) == (6, 3, [0, 0, 1, 1, 2, 2])
    assert tuple(train[4][0][:, 16, 16].tolist()) == pytest.approx(COLORS[2], abs=8)
    val_set = data.build("imagenet", root, split="val", resolution=32)
    assert sorted(labels(val_set)) == [0, 0, 1, 2]
    if val != "folders":  # in image-id order
        assert labels(val_set) == [2, 0, 1, 0]
    assert len(data.build("imagenet", root, split="all", resolution=32)) == 10
    assert train.description == "imagenet train split, 6 images, 3 classes"


def test_imagenet_layout_errors_name_the_file_and_line(tmp_path):
    root = imagenet_root(tmp_path)
    with open(root / "LOC_val_solution.csv", "a") as f:
        f.write("ILSVRC2012_val_00000005,n09999999 1 2 3 4\n")
    with pytest.raises(DataError, match=r"LOC_val_solution.csv, line 6: expected '<image id>,<synset> <box> \.\.\.' "
                                        r"with one of the 3 synsets"):
        data.build("imagenet", root, split="val")
    (root / "LOC_val_solution.csv").unlink()
    with pytest.raises(DataError, match="has neither LOC_val_solution.csv nor ILSVRC2012_devkit_t12/ to label val/"):
        data.build("imagenet", root, split="val")


def test_the_new_datasets_split_cache_and_train(tmp_path):
    root = imagenet_root(tmp_path)
    part = data.build("imagenet", root, split="test", resolution=32, test_fraction=0.5, split_seed=1)
    assert len(part) == 5
    cfg = api.resolve_config("demo", flags={"data.name": "imagenet", "data.root": str(root), "train.steps": 1,
                                            "train.batch_size": 2, "model.num_classes": 3, "train.report": False},
                             sets=["model.g_channels=16", "model.d_channels=16"])
    result = api.train(cfg, tmp_path / "run", progress=False)
    assert result.step == 1
    assert "imagenet train split, 6 images, 3 classes" in (tmp_path / "run" / "train.log").read_text()


def test_download_help_checks_the_published_checksums(tmp_path, capsys, monkeypatch):
    from sagan.data import download

    payload = b"not the real tar"
    (tmp_path / "val_256.tar").write_bytes(payload)
    monkeypatch.setitem(download.SOURCES["places365"].published, "val_256.tar", hashlib.md5(payload).hexdigest())
    assert main(["data", "download", "places365", "--data-root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "places365: get it from http://places2.csail.mit.edu/download.html" in out
    assert f"{tmp_path / 'val_256.tar'}: MD5 matches the published one" in out
    monkeypatch.setitem(download.SOURCES["places365"].published, "val_256.tar", "0" * 32)
    assert main(["data", "download", "places365", "--data-root", str(tmp_path)]) == 2
    line = error_line(capsys)
    assert "val_256.tar: MD5" in line and f"expected the published {'0' * 32}; download it again" in line
    assert main(["data", "download", "imagenet"]) == 0
    assert "imagenet: expected layout: DIR/train/<synset>/*.JPEG" in capsys.readouterr().out


def test_held_out_part_is_the_val_split_where_there_is_no_test_split():
    from sagan.config import DataConfig
    from sagan.evaluation import held_out

    assert held_out(DataConfig(name="imagenet", split="train")).split == "val"
    assert held_out(DataConfig(name="places365", split="train")).split == "val"
    assert held_out(DataConfig(name="celeba", split="train")).split == "test"
    assert held_out(DataConfig(name="lsun")).split == "train"  # no held-out split: the training images
