"""The public API: every `sagan` command is one call here, and the CLI only parses, calls and prints."""

from __future__ import annotations

import io
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from . import checkpoints
from . import config as config_mod
from .config import Config
from .errors import ConfigError, require_positive
from .evaluation import EVALUATION_FIELDS, evaluate
from .files import atomic_write_bytes
from .images import save_png
from .models.base import seeded
from .runtime import resolve_device

__all__ = ["EVALUATION_FIELDS", "TrainResult", "app", "bench", "check_compare", "check_train", "compare",
           "describe_data", "download_data", "evaluate", "export", "generate", "load_comparison", "prepare_data",
           "report", "resolve_config", "train", "visualize"]


def resolve_config(preset: str | None = None, file: str | Path | None = None,
                   flags: Mapping[str, Any] | None = None, sets: Sequence[str] = (),
                   resume: str | Path | None = None, scope: str = "run") -> Config:
    """The validated config of a run: `preset` (default demo), or the config recorded by the run directory
    `resume`, then a YAML `file`, `flags` ({config key: value}) and `sets` ('key=value' strings), for `scope`:
    run, data (a dataset to read) or synthetic (training steps without dataset files; see `sagan.config.resolve`)."""
    recorded = checkpoints.load(resume)["config"] if resume is not None else None
    return config_mod.resolve(preset, file, flags, sets, resume=recorded, scope=scope)


@dataclass
class TrainResult:
    run_dir: Path
    main: bool  # this process writes the run directory (always, outside torchrun)
    step: int  # the run's step when `train` returned
    record: dict  # the last line of metrics.jsonl it wrote ({} when there was nothing left to train)


def train(config: Config | str = "demo", out: str | Path | None = None, *, resume: bool = False,
          progress: bool = True) -> TrainResult:
    """Train `config` (a Config or a preset name) into the run directory `out` (default runs/PRESET-TIMESTAMP);
    with `resume`, continue `out` from its latest checkpoint up to `config.train.steps` or `.epochs`. Under
    torchrun every process calls it and trains its share; rank 0 writes the run directory and refreshes its report."""
    from .training import distributed
    from .training.trainer import train as train_loop
    from .viz.report import refresher

    cfg = resolve_config(config) if isinstance(config, str) else config
    run_dir = _run_dir(cfg, out, resume)
    on_checkpoint = refresher(run_dir) if cfg.train.report else None
    with distributed.process_group(cfg.train.device):
        record = train_loop(cfg, run_dir, resume=resume, progress=progress, on_checkpoint=on_checkpoint)
        main = distributed.is_main()
    step = record["step"] if record else checkpoints.load(run_dir)["step"]  # {}: already at its end
    return TrainResult(run_dir, main, step, record)


def check_train(config: Config, out: str | Path | None = None, *, resume: bool = False) -> None:
    """What `train` checks before it starts, without writing anything (`sagan train --dry-run`): the config, the
    run directory, `train.init_from` and the dataset's files against the model."""
    from .training.trainer import preflight

    preflight(config, _run_dir(config, out, resume), resume)


def _run_dir(cfg: Config, out: str | Path | None, resume: bool) -> Path:
    """The run directory `out`, by default runs/PRESET-TIMESTAMP for a new run."""
    if resume and out is None:
        raise ConfigError("resume: name the run directory to continue (out)")
    if out is not None and not str(out).strip():
        raise ConfigError("--out: expected a folder, got an empty name")
    return Path(out if out is not None else f"runs/{cfg.preset or 'run'}-{time.strftime('%Y%m%d-%H%M%S')}")


def generate(checkpoint: str | Path, num: int = 64, *, seed: int = 0, label: int | None = None,
             truncation: float | None = None, grid: bool = False, interpolate: tuple[int, int] | None = None,
             frames: int = 8, batch_size: int = 64, device: str = "auto", out: str | Path | None = None,
             generator: str = "ema") -> tuple[np.ndarray, np.ndarray | None]:
    """`num` images (uint8 N x H x W x C) of a checkpoint's (or safetensors export's) `generator` (ema or raw)
    and their labels (None if unconditional); `truncation` T redraws latent entries with |z| > T. With
    `interpolate=(A, B)`: instead, `frames` images along the spherical path from seed A's latent to seed B's (one
    class: `label`, or seed A's). With `out`: written as PNGs into that folder (`grid`: one sheet, grid.png; an
    interpolation also as interpolation.gif), or as one .npz (`images`, `labels`)."""
    from .images import make_grid
    from .viz.interpolate import seed_path

    require_positive(num=num, batch_size=batch_size, frames=frames)
    if out is not None and not str(out).strip():
        raise ConfigError("--out: expected a folder or an .npz file, got an empty name")
    out = Path(out) if out is not None else None
    if out is not None and out.suffix != ".npz" and out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder (use a folder or a .npz file name)")
    if grid and out is not None and out.suffix == ".npz":
        raise ConfigError(f"--grid: writes one PNG sheet into a folder, but --out {out} is an .npz file")
    G = checkpoints.load_generator(checkpoint, resolve_device(device), generator)
    if interpolate is None:
        labels = G.make_labels(num, label, seeded(seed))
        images = G.sample(num, seed=seed, labels=labels, batch_size=batch_size, truncation=truncation)
    else:
        images, labels = seed_path(G, interpolate, frames, truncation, label, batch_size)
    labels = labels.numpy() if labels is not None else None
    if out is not None and out.suffix == ".npz":
        buffer = io.BytesIO()
        np.savez(buffer, images=images, **({"labels": labels} if labels is not None else {}))
        atomic_write_bytes(out, buffer.getvalue())
    elif out is not None and grid:
        save_png(make_grid(images, frames if interpolate else None), out / "grid.png")
    elif out is not None:
        for i, image in enumerate(images):
            save_png(image, out / f"{i:06d}.png")
    if out is not None and out.suffix != ".npz" and interpolate:
        atomic_write_bytes(out / "interpolation.gif", _gif(images))
    return images, labels


def _gif(images: np.ndarray, seconds_per_frame: float = 0.1) -> bytes:
    """An animated GIF, looping, forth and back."""
    from PIL import Image

    frames = [Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image) for image in images]
    frames += frames[-2:0:-1]
    buffer = io.BytesIO()
    frames[0].save(buffer, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=int(seconds_per_frame * 1000))
    return buffer.getvalue()


def export(checkpoint: str | Path, fmt: str, out: str | Path) -> list[Path]:
    """Write the EMA generator of a run or checkpoint as `fmt` (onnx, torchscript, safetensors) into folder `out`,
    with generator.json (inputs, output, the config) and MODEL_CARD.md; returns their paths."""
    from .exporting import export as export_generator

    return export_generator(checkpoint, fmt, out)


def visualize(figure: str, source: str | Path, *, out: str | Path | None = None, **options) -> list[Path]:
    """Draw `figure` (a key of `sagan.viz.figures.FIGURES`: samples, compare, attention, saliency, interpolate,
    curves) of the run directory or checkpoint `source` with its `options`; writes PNGs into `out` (default
    RUN/figures) and returns their paths."""
    from .viz import figures

    if figure not in figures.FIGURES:
        raise ConfigError(f"unknown figure '{figure}'; choose from {', '.join(figures.FIGURES)}")
    drawn = figures.FIGURES[figure](source, **options)
    return figures.write(drawn, out if out is not None else checkpoints.run_dir(source) / "figures")


def app(run: str | Path, host: str = "127.0.0.1", port: int = 7860):
    """The local web app of a run or checkpoint (`sagan app`), listening but not yet serving: call
    `.serve_forever()`; `.address` is its URL."""
    from .webapp import make_server

    return make_server(run, host, port)


def report(run_dir: str | Path) -> Path:
    """Write RUN/report.html, a page to explore the run in a browser; returns its path."""
    from .viz.report import write_report

    return write_report(run_dir)


def bench(config: Config | str = "dcgan64", steps: int = 10, warmup: int = 3, compare_reference: bool = False,
          peak_tflops: float | None = None, breakdown: bool = False, ops: bool = False) -> dict:
    """Time `steps` training steps of `config` on synthetic batches (see `sagan.benchmarks.bench_train`)."""
    from .benchmarks import bench_train

    require_positive(steps=steps)
    if peak_tflops is not None:
        require_positive(peak_tflops=peak_tflops)
    if warmup < 0:
        raise ConfigError(f"--warmup must not be negative, got {warmup}")
    cfg = resolve_config(config, scope="synthetic") if isinstance(config, str) else config
    return bench_train(cfg, steps=steps, warmup=warmup, compare_reference=compare_reference,
                       peak_tflops=peak_tflops, breakdown=breakdown, ops=ops)


def load_comparison(spec: str | Path | dict, *, overrides: Mapping[str, Any] | None = None,
                    seeds: Sequence[int] | None = None, budget: Mapping[str, float] | None = None):
    """The runs of a comparison spec (a YAML file, a packaged spec name or a mapping), every config validated;
    `overrides` ({config key: value}) apply to every run last, `seeds` and `budget` replace the spec's."""
    from .experiments import load

    return load(spec, overrides=dict(overrides or {}), seeds=list(seeds) if seeds is not None else None,
                budget=dict(budget) if budget else None)


def check_compare(spec, out: str | Path) -> None:
    """What `compare` checks before it writes anything (`sagan compare --dry-run`): `out`, and every run of the
    loaded `spec` as `check_train` checks one."""
    from .experiments import check

    check(spec, Path(out))


def compare(spec, out: str | Path, *, progress: bool = True, log=print, **options) -> Path:
    """`sagan compare`: train and evaluate every run of `spec` (a loaded spec, or anything `load_comparison` takes,
    with its `options`) under `out`, resuming what an earlier call left, then write OUT/results.csv, results.md and
    index.html; returns the page."""
    from .experiments import Spec
    from .experiments import compare as run_comparison

    spec = spec if isinstance(spec, Spec) else load_comparison(spec, **options)
    return run_comparison(spec, out, progress=progress, log=log)


def download_data(name: str, root: str | Path | None = None, mirrors: Sequence[str] = (),
                  progress: bool = True) -> str:
    """Fetch dataset `name` into `root` and check its MD5s; returns the description of what `root` now holds. For a
    dataset that cannot be downloaded, returns where to get it and how to lay it out."""
    from . import data
    from .data import download

    if name not in download.SOURCES:
        raise ConfigError(f"{name} is not downloaded: it is read from files that come with sagan")
    if not download.SOURCES[name].files:
        checked = download.check_published(name, root) if root is not None else []
        return "\n".join([download.instructions(name), *checked])
    if root is None:
        raise ConfigError(f"--data-root: name the folder to download {name} into")
    download.download(name, root, tuple(mirrors) or None, progress=progress)
    return data.build(name, root, split="all").description


def describe_data(config: Config) -> dict[str, Any]:
    """Read the dataset of `config.data` and describe it: {description, images, shape (C, H, W), classes,
    homepage}."""
    from . import data
    from .data import download

    dataset = data.from_config(config.data)
    source = download.SOURCES.get(config.data.name)
    return {"description": dataset.description, "images": len(dataset), "shape": tuple(dataset[0][0].shape),
            "classes": dataset.num_classes, "homepage": source.homepage if source else None}


def prepare_data(config: Config, out: str | Path | None = None, progress: bool = True):
    """Decode the image-file dataset of `config.data` once into the memory-mapped cache that training reads
    (`out`: a .npy file or a folder; default: the cache `data.cache` names, or the automatic one); returns it."""
    from . import data

    d = config.data
    dataset = data.from_config(d)
    if not isinstance(dataset, data.ImageFileDataset):
        raise ConfigError(f"{d.name} is read into memory as one array; only image-file datasets need a cache")
    target = str(out) if out is not None else ("auto" if d.cache == "off" else d.cache)
    return data.cached(dataset, config_mod.dataset_options(d), target, workers=d.workers, strict=d.strict,
                       progress=progress)
