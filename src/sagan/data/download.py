"""Fetch the datasets that have stable public URLs, checked against their published MD5s.

Only `sagan data download` calls this module: nothing touches the network on import or while training. A file is
streamed into a temporary file beside its destination, checked, then renamed, so an interrupted or corrupt
download never leaves a file that looks complete. CelebA, LSUN and ImageNet-style folders cannot be fetched
without an account or a licence agreement; `instructions(name)` says where to get them and how to lay them out.
"""

import os
import shutil
import tarfile
import tempfile
import urllib.error
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DataError, UserError
from ..fetch import fetch_file, file_digest


class DownloadError(UserError, OSError):
    """A download that failed: unreachable on every mirror, or not the published bytes."""


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from: its files (name -> MD5) on each base URL in `mirrors`, tried in order."""

    homepage: str
    layout: str  # what `--data-root DIR` must hold, for the instructions and error messages
    mirrors: tuple[str, ...] = ()
    files: dict[str, str] = field(default_factory=dict)
    archive_folder: str = ""  # a .tar.gz in `files` unpacks to DIR/archive_folder
    # Files the user fetches (too large, or behind a sign-up) whose MD5 is published: checked where present in DIR.
    published: dict[str, str] = field(default_factory=dict)


_MNIST_LAYOUT = ("DIR/train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and "
                 "t10k-labels-idx1-ubyte.gz (gzipped as published, or un-gzipped)")

SOURCES: dict[str, Source] = {
    "cifar10": Source(
        homepage="https://www.cs.toronto.edu/~kriz/cifar.html",
        layout="DIR/cifar-10-batches-py/ with data_batch_1 ... data_batch_5, test_batch and batches.meta "
               "(the python version, unpacked from cifar-10-python.tar.gz)",
        mirrors=("https://www.cs.toronto.edu/~kriz/",),
        files={"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
        archive_folder="cifar-10-batches-py",
    ),
    "mnist": Source(
        homepage="http://yann.lecun.com/exdb/mnist/",
        layout=_MNIST_LAYOUT,
        # The copy PyTorch's datasets use first; the original site has been unreliable since 2023.
        mirrors=("https://ossci-datasets.s3.amazonaws.com/mnist/", "http://yann.lecun.com/exdb/mnist/"),
        files={
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    ),
    "fashion-mnist": Source(
        homepage="https://github.com/zalandoresearch/fashion-mnist",
        layout=_MNIST_LAYOUT,
        mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
        files={
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    ),
    "celeba": Source(
        homepage="https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html (Google Drive or Baidu links there; "
                 "non-commercial research use only)",
        layout="DIR/img_align_celeba/ (or the unopened DIR/img_align_celeba.zip) and DIR/list_eval_partition.txt; "
               "DIR/list_attr_celeba.txt too for data.attribute",
    ),
    "lsun": Source(
        homepage="https://github.com/fyu/lsun (download.py -c CATEGORY; e.g. church_outdoor, bedroom)",
        layout="an unzipped category database such as church_outdoor_train_lmdb/ (data.mdb, lock.mdb); "
               "point --data-root at that folder; needs pip install 'sagan[lsun]'",
    ),
    "places365": Source(
        homepage="http://places2.csail.mit.edu/download.html (Places365-Standard: filelist_places365-standard.tar, "
                 "train_256_places365standard.tar and val_256.tar, or the large-image tars)",
        layout="DIR/categories_places365.txt, places365_train_standard.txt and places365_val.txt (from the file "
               "list tar) beside the unpacked DIR/data_256/ and DIR/val_256/ (or data_large/, val_large/)",
        published={  # as data.csail.mit.edu publishes them (torchvision checks the same)
            "filelist_places365-standard.tar": "35a0585fee1fa656440f3ab298f8479c",
            "train_256_places365standard.tar": "53ca1c756c3d1e7809517cc47c5561c5",
            "val_256.tar": "e27b17d8d44f4af9a78502beb927f808",
            "train_large_places365standard.tar": "67e186b496a84c929568076ed01a8aa1",
            "val_large.tar": "9b71c4993ad89d2d8bcbdc4aef38042f",
        },
    ),
    "imagenet": Source(
        homepage="https://image-net.org/download.php (ILSVRC-2012, after registering; or the Kaggle ImageNet "
                 "Object Localization Challenge, which adds LOC_val_solution.csv)",
        layout="DIR/train/<synset>/*.JPEG (each class tar of ILSVRC2012_img_train.tar unpacked into its folder), "
               "DIR/val/ILSVRC2012_val_*.JPEG with DIR/LOC_val_solution.csv or DIR/ILSVRC2012_devkit_t12/ (or "
               "DIR/val/<synset>/*.JPEG)",
        published={
            "ILSVRC2012_img_train.tar": "1d675b47d978889d74fa0da5fadfb00e",
            "ILSVRC2012_img_val.tar": "29b22e2961454d5413ddabcf34fc5622",
            "ILSVRC2012_devkit_t12.tar.gz": "fa75699e90414af021442c21a62c3abf",
        },
    ),
    "imagefolder": Source(
        homepage="https://image-net.org/download.php (ImageNet, after registering) or "
                 "http://places2.csail.mit.edu/download.html (Places365); any folder of images works",
        layout="DIR/**/*.jpg|png|... searched recursively; with data.labels=folders each first-level folder of DIR "
               "is one class, e.g. DIR/n01440764/*.JPEG as in ImageNet's train/",
    ),
}


def instructions(name: str) -> str:
    """Where to get dataset `name` and what its data root must hold, in two lines."""
    source = SOURCES[name]
    return f"{name}: get it from {source.homepage}\n{name}: expected layout: {source.layout}"


def check_published(name: str, root: str | os.PathLike) -> list[str]:
    """One line per file of dataset `name` with a published MD5 that is in `root`: matching, or not (DataError)."""
    lines = []
    for filename, md5 in SOURCES[name].published.items():
        path = Path(root).expanduser() / filename
        if path.is_file():
            found = file_digest(path, "md5")
            if found != md5:
                raise DataError(f"{path}: MD5 {found}, expected the published {md5}; download it again")
            lines.append(f"{name}: {path}: MD5 matches the published one")
    return lines


def download(name: str, root: str | os.PathLike, mirrors: tuple[str, ...] | None = None,
             progress: bool = True) -> list[Path]:
    """Fetch the files of dataset `name` into `root`, verify their MD5s and unpack archives; return the files.

    Files already present with the right checksum are not fetched again. `mirrors` replaces the dataset's base
    URLs (each is followed by the file name). Raises DataError for a dataset without public URLs and
    DownloadError when no mirror gives a file with the published checksum.
    """
    source = SOURCES.get(name)
    if source is None or not source.files:
        manual = ", ".join(n for n, s in SOURCES.items() if not s.files)
        automatic = ", ".join(n for n, s in SOURCES.items() if s.files)
        raise DataError(f"{name} cannot be downloaded automatically ({manual} need a manual download); "
                        f"sagan downloads {automatic}")
    root = Path(root).expanduser()
    if root.exists() and not root.is_dir():
        raise DataError(f"data root {root} is not a folder")
    created = not root.exists()
    root.mkdir(parents=True, exist_ok=True)
    paths = []
    try:
        for filename, md5 in source.files.items():
            path = root / filename
            fetched = not (path.is_file() and file_digest(path, "md5") == md5)
            if fetched:
                fetch(filename, md5, mirrors or source.mirrors, path, progress)
            if source.archive_folder and (fetched or not (root / source.archive_folder).is_dir()):
                unpack(path, root, source.archive_folder)
            paths.append(path)
    except BaseException:
        if created and not any(root.iterdir()):  # a failed first download leaves no empty folder behind
            root.rmdir()
        raise
    return paths


def fetch(filename: str, md5: str, mirrors: tuple[str, ...], path: Path, progress: bool) -> None:
    """Download `filename` to `path` from the first mirror that serves it with checksum `md5`."""
    failures = []
    for base in mirrors:
        url = base.rstrip("/") + "/" + filename
        try:
            found = fetch_file(url, path, "md5", md5.__eq__, progress)
        except urllib.error.HTTPError as e:
            failures.append(f"{url} (HTTP {e.code} {e.reason})")
            continue
        except (OSError, ValueError) as e:  # URLError is an OSError; ValueError: a malformed URL
            failures.append(f"{url} ({getattr(e, 'reason', None) or e})")
            continue
        if found == md5:
            return
        failures.append(f"{url} (MD5 {found}, expected {md5}; not kept)")
    raise DownloadError(f"could not download {filename}: " + "; ".join(failures))


def unpack(archive: Path, root: Path, folder: str) -> None:
    """Extract the .tar.gz `archive` into `root`, accepting only plain files and folders under `folder`/.

    Extracts into a temporary folder first, so an interrupted unpack never leaves a partial `folder`.
    """
    target = root / folder
    with tempfile.TemporaryDirectory(dir=root, prefix=f".{folder}.") as tmp:
        try:
            with tarfile.open(archive, "r:gz") as tar:
                members = tar.getmembers()
                for member in members:
                    parts = Path(member.name).parts
                    if (not (member.isfile() or member.isdir()) or not parts or parts[0] != folder
                            or ".." in parts or Path(member.name).is_absolute()):
                        raise DataError(f"{archive}: unexpected member {member.name!r}; expected only files "
                                        f"under {folder}/")
                # Python 3.12+ also vets members itself (and warns when not asked to).
                safe = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
                tar.extractall(tmp, members=members, **safe)
        except (tarfile.TarError, EOFError, OSError) as e:
            raise DataError(f"cannot unpack {archive}: {e}") from None
        if target.exists():
            shutil.rmtree(target)
        os.replace(Path(tmp) / folder, target)
