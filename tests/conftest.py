"""Shared test helpers."""

import contextlib
import gzip
import io
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

# Real public datasets kept beside the repository (../shared/data); tests that read them skip without them.
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SHARED_SETS = ("mnist", "fashion-mnist", "celeba-sample")
needs_shared_data = pytest.mark.skipif(not all((SHARED_DATA / name).is_dir() for name in SHARED_SETS),
                                       reason=f"needs ../shared/data with {', '.join(SHARED_SETS)}")

# The CUDA variants of the tests run where a GPU is visible (the lent GPU machine); CI and this CPU machine skip them.
# They carry the `cuda` mark, so the GPU script runs them alone (`pytest -m cuda`) within a lent machine's minutes.
CUDA_MARKS = (pytest.mark.cuda, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"))
DEVICES = ["cpu", pytest.param("cuda", marks=CUDA_MARKS)]


def with_marks(test, *marks):
    for mark in marks:
        test = mark(test)
    return test


def needs_cuda(test):
    return with_marks(test, *CUDA_MARKS)


# Pages opened in headless Chromium through playwright, where both are installed.
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
try:
    import playwright.sync_api  # noqa: F401
    HAVE_PLAYWRIGHT = True
except ImportError:
    HAVE_PLAYWRIGHT = False


def needs_browser(test):
    return with_marks(test, pytest.mark.browser,
                      pytest.mark.skipif(CHROMIUM is None, reason="needs Chromium (apt-get install chromium)"),
                      pytest.mark.skipif(not HAVE_PLAYWRIGHT, reason="needs the playwright package (the test extra)"))


@contextlib.contextmanager
def browser_page(path: Path | str, width: int = 1200, height: int = 1000):
    """The page at `path` (a file, or a URL) loaded in headless Chromium, with `.requests` (every URL it asked for)
    and `.errors` (script errors) recorded; `.broken_images()` lists the images that did not load."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.requests, page.errors = [], []
            page.on("request", lambda request: page.requests.append(request.url))
            page.on("pageerror", lambda error: page.errors.append(str(error)))
            page.broken_images = lambda: page.evaluate("""() => [...document.images]
                .filter(img => !(img.complete && img.naturalWidth > 0)).map(img => img.alt || img.src.slice(0, 40))""")
            page.goto(path if isinstance(path, str) else path.resolve().as_uri())
            page.wait_for_load_state("load")
            yield page
        finally:
            browser.close()


# `sagan train` arguments of a run that takes a few seconds on the CPU.
TINY = ["--steps", "2", "--batch-size", "8", "--device", "cpu", "--no-progress", "--set", "model.g_channels=16",
        "--set", "model.d_channels=16", "--set", "train.num_samples=4"]


def error_line(capsys) -> str:
    """The one line a user mistake printed to stderr (and no traceback)."""
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.fixture(autouse=True)
def dataset_cache_dir(tmp_path_factory, monkeypatch):
    """Automatic caches (datasets, reference statistics) go to a fresh temporary folder, never to ~/.cache."""
    folder = tmp_path_factory.mktemp("sagan-cache")
    monkeypatch.setenv("SAGAN_CACHE", str(folder))
    return folder / "datasets"


def tiny_config(**overrides):
    """The demo preset shrunk to run a few steps in about a second on the CPU; `overrides` are `--set` pairs."""
    from sagan import config

    cfg = config.preset("demo")
    values = {"model.g_channels": 16, "model.d_channels": 16, "model.z_dim": 16, "train.batch_size": 8,
              "train.steps": 4, "train.num_samples": 9, "train.log_every": 2, "train.sample_every": 2,
              "train.checkpoint_every": 2, "train.device": "cpu"}
    for key, value in (values | overrides).items():
        config.set_value(cfg, key, value)
    config.validate(cfg)
    return cfg


def straight_and_resumed(tmp_path: Path, overrides: dict, steps: int = 6) -> tuple[dict, dict]:
    """The final checkpoints of a tiny run trained `steps` steps straight (tmp_path/straight) and of the same run
    stopped at half and resumed to the end (tmp_path/halves); checkpoints only at the ends."""
    from sagan.training.trainer import train

    for name, length, resume in (("straight", steps, False), ("halves", steps // 2, False), ("halves", steps, True)):
        cfg = tiny_config(**overrides, **{"train.steps": length, "train.checkpoint_every": 10})
        train(cfg, tmp_path / name, resume=resume, progress=False)
    return tuple(torch.load(tmp_path / name / "checkpoints" / "latest.pt", weights_only=True)
                 for name in ("straight", "halves"))


# Images for the dataset tests.
RED, BLUE = (220, 30, 40), (20, 40, 210)
COLORS = [(250, 0, 0), (0, 250, 0), (0, 0, 250), (250, 250, 0), (0, 250, 250)]


def luma(rgb: tuple[int, int, int]) -> int:
    return np.asarray(Image.new("RGB", (1, 1), rgb).convert("L"))[0, 0]


def solid(color, size=(40, 30)) -> Image.Image:
    return Image.new("RGB", size, color)


def encode(image: Image.Image, fmt: str) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **({"lossless": True} if fmt == "WEBP" else {"quality": 95}))
    return buffer.getvalue()


def loader_labels(dataset, workers: int) -> list[int]:
    """All labels read through a DataLoader with `workers` processes, in order."""
    batches = DataLoader(dataset, batch_size=2, num_workers=workers)
    return [int(label) for _, labels in batches for label in labels]


def make_celeba(root: Path, partitions: dict[int, int]) -> Path:
    """A tiny official CelebA layout: image number -> partition (0 train, 1 valid, 2 test); blue 178x178 faces
    between red bands."""
    (root / "img_align_celeba").mkdir(parents=True)
    pixels = np.empty((218, 178, 3), dtype=np.uint8)
    pixels[:] = RED
    pixels[20:198] = BLUE
    for number in partitions:
        Image.fromarray(pixels).save(root / "img_align_celeba" / f"{number:06d}.jpg", quality=95, subsampling=0)
    rows = "".join(f"{number:06d}.jpg {part}\r\n" for number, part in partitions.items())
    (root / "list_eval_partition.txt").write_bytes(rows.encode())
    return root


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file (MNIST's format), gzipped for a .gz path."""
    from sagan.data import idx

    data = idx.encode(array)
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def make_mnist(root: Path, train: int, test: int = 1) -> Path:
    """MNIST's four IDX files with `train` and `test` random digits in `root`."""
    rng = np.random.default_rng(3)
    root.mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 256, (n, 28, 28), dtype=np.uint8))
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, n, dtype=np.uint8))
    return root
