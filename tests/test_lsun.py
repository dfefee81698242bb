"""The lsun dataset: LSUN's category lmdb databases, built in the test as published."""

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import COLORS, encode, solid
from torch.utils.data import DataLoader

from sagan import cli
from sagan.data import build
from sagan.errors import DataError


def make_lsun(path: Path, colors: list[tuple[int, int, int]]) -> Path:
    """A category database as published: hex ids -> WebP images (one JPEG, as some records are)."""
    lmdb = pytest.importorskip("lmdb", reason="the lsun dataset needs the optional lmdb package")
    env = lmdb.open(str(path), map_size=1 << 24)
    with env.begin(write=True) as txn:
        for i, color in enumerate(colors):
            txn.put(f"{i:040x}".encode(), encode(solid(color, (48, 32)), "JPEG" if i == 1 else "WEBP"))
    env.close()
    return path



def test_lsun_reads_every_record_in_key_order(tmp_path):
    root = make_lsun(tmp_path / "church_outdoor_train_lmdb", COLORS)
    dataset = build("lsun", root, resolution=32)
    assert len(dataset) == 5 and dataset.num_classes == 0
    assert dataset.description == "lsun church_outdoor_train_lmdb, 5 images"
    for (image, label), color in zip((dataset[i] for i in range(5)), COLORS, strict=True):
        assert image.shape == (3, 32, 32) and label == 0
        assert np.abs(image.float().mean((1, 2)).numpy() - color).max() < 4


def test_lsun_works_with_worker_processes(tmp_path):
    dataset = build("lsun", make_lsun(tmp_path / "db", COLORS))
    dataset[0]  # opens the database in this process first, as a training run's checks may
    images = torch.cat([images for images, _ in DataLoader(dataset, batch_size=2, num_workers=2)])
    assert torch.equal(images, torch.stack([dataset[i][0] for i in range(5)]))


def test_lsun_root_must_be_a_database(tmp_path):
    make_lsun(tmp_path / "bedroom_train_lmdb", COLORS[:1])
    make_lsun(tmp_path / "bedroom_val_lmdb", COLORS[:1])
    with pytest.raises(DataError, match="holds LSUN databases; point data.root at one of them: bedroom_train_lmdb, "
                                        "bedroom_val_lmdb"):
        build("lsun", tmp_path)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match=f"{tmp_path / 'empty'} has no data.mdb: expected an LSUN category database"):
        build("lsun", tmp_path / "empty")


def test_lsun_without_lmdb_names_the_extra(tmp_path, monkeypatch, capsys):
    root = make_lsun(tmp_path / "db", COLORS[:1])
    monkeypatch.setitem(sys.modules, "lmdb", None)  # import lmdb now raises ImportError
    with pytest.raises(DataError, match=r"needs the lmdb package: pip install 'sagan\[lsun\]'"):
        build("lsun", root)
    assert cli.main(["train", "--data", "lsun", "--data-root", str(root), "--steps", "1"]) == 2
    assert "pip install 'sagan[lsun]'" in capsys.readouterr().err
