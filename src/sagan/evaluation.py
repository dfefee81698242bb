"""Scoring a generator or a set of images against real images: the work behind `sagan evaluate`, and the
reference statistics the training loop's periodic evaluation uses too."""

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
from PIL import Image
from torch.utils.data import DataLoader, Subset

from . import checkpoints, data
from .config import DataConfig, dataset_options, from_dict
from .data.imagefolder import find_images
from .data.transforms import load_image
from .errors import ConfigError, DataError, MissingPathError, require_positive
from .files import cache_dir as default_cache_dir
from .metrics.evaluate import Evaluator, array_batches, default_metrics, generator_batches, parse_metrics
from .metrics.stats import FeatureStats, load_stats, save_stats
from .runtime import resolve_device

# The fields of `evaluate`'s result that describe the evaluation; the others are the metrics' results.
EVALUATION_FIELDS = ("step", "num_samples", "backbone", "precision", "generator", "reference", "against", "source")


def held_out(d: DataConfig, split: str = "auto") -> DataConfig:
    """The data an evaluation of a run trained on `d` compares with: `split` of the same images, or with auto the
    held-out part where training used a train split that has one (data.test_fraction's test part, or the dataset's
    official test split, else its val split), else the training images themselves."""
    if split == "auto":
        splits = ("test",) if d.test_fraction > 0 else data.DATASETS[d.name].splits
        held = next((s for s in ("test", "val") if s in splits), None)
        split = held if d.split == "train" and held else d.split
    return dataclasses.replace(d, split=split)


def reference_stats(evaluator: Evaluator, reference: str, *, data_root=None, split: str = "auto",
                    resolution: int, channels: int, crop: int = 0, max_images: int = 0, batch_size: int = 64,
                    workers: int = 0, cache_dir=None, dataset=None) -> tuple[dict[str, FeatureStats], str]:
    """Statistics of the real images named by `reference`, and a description of them: a stats .npz file, a dataset
    name (its `split`, read from `data_root`; auto: as `held_out` picks after training on its train split) or an
    image folder, the last two at `resolution`, at most `max_images` of them (a seeded random subset; 0 = all), and
    cached under `cache_dir` (default: `$SAGAN_CACHE/stats`, see `files.cache_dir`). `dataset`, a loaded dataset
    with the DataConfig that made it, is used as it is instead of `reference` (at that config's resolution,
    channels and crop)."""
    if not evaluator.reference_extractors:
        return {}, "no real images (the metrics need none)"
    path = Path(reference).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise MissingPathError(f"--reference: stats file {path} does not exist")
        return load_stats(path), f"the statistics in {path}"
    if dataset is not None:
        dataset, data_config = dataset
        resolution, channels, crop = data_config.resolution, data_config.channels, data_config.crop
        source = {"dataset": data_config.name, "options": dataset_options(data_config)}
    elif reference in data.DATASETS:
        split = held_out(DataConfig(name=reference, split="train"), split).split
        dataset = data.build(reference, data_root, split=split, resolution=resolution, channels=channels, crop=crop)
        root = str(Path(data_root).expanduser().resolve()) if data_root else None
        source = {"dataset": reference, "root": root, "split": split}
    elif path.is_dir():
        split = held_out(DataConfig(name="imagefolder", split="train"), split).split
        dataset = data.build("imagefolder", path, split=split, resolution=resolution, channels=channels, crop=crop)
        # A changed folder is a new source: the files' names, sizes and times are part of the key.
        source = {"folder": str(path.resolve()), "fingerprint": dataset.fingerprint()}
    else:
        raise ConfigError(f"--reference: '{reference}' is not a dataset ({', '.join(data.DATASETS)}), an image "
                          f"folder or a stats .npz file")
    source |= {"resolution": resolution, "channels": channels, "crop": crop, "count": len(dataset)}
    description = dataset.description
    if 0 < max_images < len(dataset):
        dataset = Subset(dataset, np.sort(np.random.RandomState(0).choice(len(dataset), max_images, replace=False)))
        source["subset"] = max_images
    loader = lambda: (images for images, _ in DataLoader(dataset, batch_size, num_workers=workers))
    stats = evaluator.reference(loader, len(dataset), source,
                                cache_dir=default_cache_dir("stats") if cache_dir is None else cache_dir)
    return stats, description + (f", a random {max_images} of them" if "subset" in source else "")


def load_images(path: str | os.PathLike) -> np.ndarray:
    """uint8 N x H x W x C images from an .npz (array `images`, as `sagan generate` writes) or an image folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingPathError(f"--images: {path} does not exist")
    if path.is_dir():
        files = find_images(path)
        if not files:
            raise DataError(f"--images: no images found under {path}")
        try:
            with Image.open(files[0]) as first:
                size, channels = first.size[0], 1 if first.mode in ("L", "I;16", "I") else 3
        except (OSError, SyntaxError, ValueError) as e:
            raise DataError(f"--images: cannot decode image {files[0]}: {e}") from None
        return np.stack([load_image(f, size, channels) for f in files])
    try:
        with np.load(path, allow_pickle=False) as f:
            images = f["images"]
    except (OSError, ValueError, KeyError) as e:
        raise DataError(f"--images: {path} is not an .npz with a uint8 'images' array ({e})") from None
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise DataError(f"--images: 'images' in {path} must be uint8 N x H x W x C (C = 1 or 3), got "
                        f"{images.dtype} {images.shape}")
    return images


def evaluate(checkpoint=None, images=None, *, metrics: str | list[str] | None = None, num_samples: int = 50_000,
             reference: str | None = None, data_root=None, reference_samples: int = 0, split: str = "auto",
             crop: int = 0, resolution: int | None = None, backbone: str = "inception", inception_weights=None,
             vgg16_weights=None, resize: str = "tf1", precision: str = "fp32", batch_size: int = 64,
             device: str = "auto", seed: int = 0, save_stats_to=None, cache_dir=None, progress: bool = True,
             record: bool = False, generator: str = "ema") -> dict:
    """Score `num_samples` images of a checkpoint's `generator` (ema or raw; a run directory or .pt file), or the
    `images` (a folder or an .npz), with `metrics` (default by backbone) against the real images of `reference` (a
    dataset name with `data_root`, an image folder or a stats .npz; for a checkpoint, by default the run's own data,
    its held-out part where it has one, see `held_out`), its `split` (auto: the held-out part). Returns {step,
    num_samples, backbone, precision, generator, reference, against (the real images used), source, results...};
    with `record`, also appends the results to the run's metrics.jsonl. `save_stats_to` writes the reference
    statistics to a file (it alone needs neither checkpoint nor images)."""
    if not (checkpoint or images or save_stats_to):
        raise ConfigError("evaluate needs --checkpoint RUN or --images DIR|FILE.npz (or --save-stats FILE)")
    if checkpoint and images:
        raise ConfigError("evaluate takes --checkpoint or --images, not both")
    require_positive(num_samples=num_samples, batch_size=batch_size)
    if reference_samples < 0:
        raise ConfigError(f"--reference-samples must not be negative (0: all), got {reference_samples}")
    device = resolve_device(device)
    metrics = parse_metrics(metrics or default_metrics(backbone), backbone)
    G, real, step, run_data = None, None, None, None
    if checkpoint:
        state = checkpoints.load(checkpoint, device)
        step, G = state["step"], checkpoints.generator(state, device, generator)
        run_data = from_dict(state["config"]).data
        size, channels, total = G.resolution, G.channels, num_samples
    elif images:
        real = load_images(images)
        size, channels, total = real.shape[1], real.shape[-1], len(real)
    else:
        size, channels = resolution, 3
        if size is None:
            raise ConfigError("--save-stats without --checkpoint or --images needs --resolution")
    if "swd" in metrics and resolution and resolution != size:  # its pyramids differ in size and levels
        raise ConfigError(f"--resolution {resolution}: swd compares images of one size, and those scored are "
                          f"{size}x{size}")
    evaluator = Evaluator(metrics, backbone, device, inception_weights, vgg16_weights, resize, batch_size,
                          progress=progress, precision=precision)
    stats, against = {}, None
    if evaluator.reference_extractors:
        own = None
        if not reference and run_data is not None:  # the run's own images, at their crop
            ignored = [flag for flag, value in (("--crop", crop), ("--resolution", resolution)) if value]
            if ignored:
                raise ConfigError(f"{' and '.join(ignored)}: for the images of --reference; without --reference "
                                  f"the run's own images are read as it trained on them")
            own = dataclasses.replace(held_out(run_data, split), root=data_root or run_data.root)
            own = (data.from_config(own), own)
        elif not reference:
            raise ConfigError(f"--metrics {','.join(metrics)} compare with real images: give --reference")
        stats, against = reference_stats(evaluator, reference or run_data.name, data_root=data_root, split=split,
                                         resolution=resolution or size, channels=channels, crop=crop,
                                         max_images=reference_samples, batch_size=batch_size, cache_dir=cache_dir,
                                         dataset=own)
    if save_stats_to:
        save_stats(save_stats_to, stats)
    if G is None and real is None:
        return {}
    batches = generator_batches(G, total, seed, batch_size) if G is not None else array_batches(real, batch_size)
    results = evaluator(batches, total, stats)
    if record and checkpoint:
        run_dir = checkpoints.run_dir(checkpoint)
        if (run_dir / "config.yaml").is_file():
            with open(run_dir / "metrics.jsonl", "a") as f:
                f.write(json.dumps({"step": step} | {f"eval/{k}": v for k, v in results.items()}
                                   | {"eval/num_samples": total}) + "\n")
    described = (step, total, backbone, precision, generator if checkpoint else None, reference, against,
                 str(checkpoint or images))
    return dict(zip(EVALUATION_FIELDS, described)) | results
