"""Tests for `sagan data download`: a local HTTP server on 127.0.0.1 stands in for the dataset sites."""

import dataclasses
import hashlib
import io
import re
import socket
import tarfile
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, needs_shared_data
from test_datasets_formats import write_cifar_batch

from sagan import cli
from sagan.data import build, download
from sagan.errors import DataError


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def serve():
    """serve(folder) -> the base URL of an HTTP server on a free local port that serves `folder`."""
    servers = []

    def start(folder: Path) -> str:
        server = ThreadingHTTPServer(("127.0.0.1", 0), partial(QuietHandler, directory=str(folder)))
        threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}/"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def closed_url() -> str:
    """A local URL where nothing listens."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def leftovers(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_fetch_writes_the_verified_file(serve, tmp_path):
    (tmp_path / "site").mkdir()
    payload = np.random.default_rng(0).bytes(3_000_000)  # several chunks
    (tmp_path / "site" / "file.bin").write_bytes(payload)
    out = tmp_path / "out"
    out.mkdir()
    download.fetch("file.bin", md5(payload), (serve(tmp_path / "site"),), out / "file.bin", progress=False)
    assert (out / "file.bin").read_bytes() == payload and leftovers(out) == []


def test_wrong_checksum_leaves_nothing_behind(serve, tmp_path):
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "file.bin").write_bytes(b"tampered")
    out = tmp_path / "out"
    out.mkdir()
    url = serve(tmp_path / "site")
    with pytest.raises(download.DownloadError, match=rf"could not download file.bin: {url}file.bin "
                                                     rf"\(MD5 {md5(b'tampered')}, expected 0+; not kept\)$"):
        download.fetch("file.bin", "0" * 32, (url,), out / "file.bin", progress=False)
    assert list(out.iterdir()) == []


def test_unreachable_and_missing_mirrors_fall_through_to_the_next(serve, closed_url, tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "good").mkdir()
    (tmp_path / "good" / "f").write_bytes(b"data")
    mirrors = (closed_url, serve(tmp_path / "empty"), serve(tmp_path / "good"))
    download.fetch("f", md5(b"data"), mirrors, tmp_path / "f", progress=False)
    assert (tmp_path / "f").read_bytes() == b"data"
    with pytest.raises(download.DownloadError,
                       match=rf"{closed_url}f \(.*refused.*\); .*/f \(HTTP 404 File not found\)$"):
        download.fetch("f", md5(b"data"), mirrors[:2], tmp_path / "g", progress=False)
    assert not (tmp_path / "g").exists()


def make_cifar_tar(path: Path) -> None:
    """A small cifar-10-python.tar.gz in the official layout: 2 images per batch."""
    rng = np.random.default_rng(1)
    with tarfile.open(path, "w:gz") as tar:
        for name in ["data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch"]:
            batch = path.parent / name
            write_cifar_batch(batch, rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8), [3, 4])
            tar.add(batch, arcname=f"cifar-10-batches-py/{name}")
            batch.unlink()


@pytest.fixture
def cifar_site(tmp_path, monkeypatch) -> Path:
    """A site serving a small CIFAR-10 archive, whose MD5 replaces the published one."""
    site = tmp_path / "site"
    site.mkdir()
    make_cifar_tar(site / "cifar-10-python.tar.gz")
    source = dataclasses.replace(download.SOURCES["cifar10"],
                                 files={"cifar-10-python.tar.gz": md5((site / "cifar-10-python.tar.gz").read_bytes())})
    monkeypatch.setitem(download.SOURCES, "cifar10", source)
    return site


def test_cli_downloads_unpacks_and_checks_cifar10(cifar_site, serve, closed_url, tmp_path, capsys):
    root = tmp_path / "data"
    args = ["data", "download", "cifar10", "--data-root", str(root), "--no-progress"]
    assert cli.main(args + ["--mirror", serve(cifar_site)]) == 0
    assert f"{root} holds cifar10 all splits, 12 images" in capsys.readouterr().out
    assert len(build("cifar10", root, split="train")) == 10 and leftovers(root) == []
    # Present with the right checksum: nothing is fetched (the only mirror is down), a lost folder is unpacked again.
    (root / "cifar-10-batches-py" / "test_batch").unlink()
    (root / "cifar-10-batches-py").rename(root / "moved")
    assert cli.main(args + ["--mirror", closed_url]) == 0
    assert len(build("cifar10", root, split="test")) == 2


def test_cli_download_errors_are_one_line_and_exit_2(cifar_site, serve, closed_url, tmp_path, capsys):
    (cifar_site / "cifar-10-python.tar.gz").write_bytes(b"not the archive")
    root = tmp_path / "data"
    args = ["data", "download", "cifar10", "--data-root", str(root), "--no-progress"]
    for mirror, reason in [(serve(cifar_site), "MD5 .*, expected .*; not kept"), (closed_url, "refused")]:
        assert cli.main(args + ["--mirror", mirror]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("sagan: error: could not download cifar-10-python.tar.gz: ")
        assert re.search(reason, err)
        assert not root.exists()  # the folder it made for the download, gone with it
    assert cli.main(["data", "download", "cifar10", "--no-progress"]) == 2
    assert "--data-root: name the folder to download cifar10 into" in capsys.readouterr().err


def test_archives_with_unexpected_members_are_refused(tmp_path):
    archive = tmp_path / "a.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/../../escape")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(DataError, match=r"unexpected member 'cifar-10-batches-py/../../escape'; expected only files"):
        download.unpack(archive, tmp_path, "cifar-10-batches-py")
    assert not (tmp_path / "cifar-10-batches-py").exists() and not (tmp_path.parent / "escape").exists()


@pytest.mark.parametrize("name, words", [("celeba", ["mmlab.ie.cuhk.edu.hk", "img_align_celeba.zip"]),
                                         ("lsun", ["fyu/lsun", "church_outdoor_train_lmdb", "sagan[lsun]"]),
                                         ("imagefolder", ["image-net.org", "data.labels=folders"])])
def test_manual_datasets_say_where_to_get_them(name, words, capsys):
    assert cli.main(["data", "download", name]) == 0
    out = capsys.readouterr().out
    assert all(word in out for word in words)
    with pytest.raises(DataError, match=f"{name} cannot be downloaded automatically"):
        download.download(name, "unused")


def test_embedded_needs_no_download(capsys):
    assert cli.main(["data", "download", "embedded"]) == 2
    assert "embedded is not downloaded" in capsys.readouterr().err


@needs_shared_data
@pytest.mark.parametrize("name", ["mnist", "fashion-mnist"])
def test_real_files_pass_the_published_checksums(name, serve, tmp_path, capsys):
    root = tmp_path / name
    assert cli.main(["data", "download", name, "--data-root", str(root), "--mirror", serve(SHARED_DATA / name),
                     "--no-progress"]) == 0
    assert f"{name} all splits, 70000 images" in capsys.readouterr().out
    assert sorted(path.name for path in root.iterdir()) == sorted(download.SOURCES[name].files)
