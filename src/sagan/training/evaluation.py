"""Evaluation wiring shared by `sagan evaluate` and the training loop: reference statistics from a dataset, an
image folder or a stats file; images from a folder or an .npz; periodic evaluation of the EMA generator that
keeps `checkpoints/best.pt`."""

import math
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from .. import checkpoints, data
from ..config import Config, dataset_options
from ..data.imagefolder import find_images
from ..data.transforms import load_image
from ..errors import ConfigError, DataError, MissingPathError
from ..files import atomic_write_bytes
from ..files import cache_dir as default_cache_dir
from ..metrics.evaluate import HIGHER_IS_BETTER, Evaluator, generator_batches
from ..metrics.stats import FeatureStats, load_stats
from . import checkpoint
from .runlog import RunLog

BEST = "best.pt"


def reference_stats(evaluator: Evaluator, reference: str, *, data_root=None, split: str = "train",
                    resolution: int, channels: int, crop: int = 0, max_images: int = 0, batch_size: int = 64,
                    workers: int = 0, cache_dir=None, training_set=None) -> dict[str, FeatureStats]:
    """Statistics of the real images named by `reference`: a stats .npz file, a dataset name (read from `data_root`)
    or an image folder, the last two at `resolution`, at most `max_images` of them (a seeded random subset; 0 = all),
    and cached under `cache_dir` (default: `$SAGAN_CACHE/stats`, see `files.cache_dir`). `training_set`, a loaded
    dataset with the DataConfig that made it, is used as it is instead of reading its files again."""
    if not evaluator.reference_extractors:
        return {}
    path = Path(reference).expanduser()
    if path.suffix == ".npz":
        if not path.is_file():
            raise MissingPathError(f"--reference: stats file {path} does not exist")
        return load_stats(path)
    if training_set is not None:
        dataset, data_config = training_set
        source = {"dataset": data_config.name, "options": dataset_options(data_config)}
    elif reference in data.DATASETS:
        dataset = data.build(reference, data_root, split=split, resolution=resolution, channels=channels, crop=crop)
        root = str(Path(data_root).expanduser().resolve()) if data_root else None
        source = {"dataset": reference, "root": root, "split": split}
    elif path.is_dir():
        dataset = data.build("imagefolder", path, resolution=resolution, channels=channels, crop=crop)
        # A changed folder is a new source: the files' names, sizes and times are part of the key.
        source = {"folder": str(path.resolve()), "fingerprint": dataset.fingerprint()}
    else:
        raise ConfigError(f"--reference: '{reference}' is not a dataset ({', '.join(data.DATASETS)}), an image "
                          f"folder or a stats .npz file")
    source |= {"resolution": resolution, "channels": channels, "crop": crop, "count": len(dataset)}
    if 0 < max_images < len(dataset):
        dataset = Subset(dataset, np.sort(np.random.RandomState(0).choice(len(dataset), max_images, replace=False)))
        source["subset"] = max_images
    loader = lambda: (images for images, _ in DataLoader(dataset, batch_size, num_workers=workers))  # noqa: E731
    return evaluator.reference(loader, len(dataset), source,
                               cache_dir=default_cache_dir("stats") if cache_dir is None else cache_dir)


def load_images(path: str | os.PathLike) -> np.ndarray:
    """uint8 N x H x W x C images from an .npz (array `images`, as `sagan generate` writes) or an image folder."""
    path = Path(path).expanduser()
    if not path.exists():
        raise MissingPathError(f"--images: {path} does not exist")
    if path.is_dir():
        files = find_images(path)
        if not files:
            raise DataError(f"--images: no images found under {path}")
        with Image.open(files[0]) as first:
            size, channels = first.size[0], 1 if first.mode in ("L", "I;16", "I") else 3
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


class PeriodicEvaluation:
    """`cfg.eval` during training: scores the EMA generator, logs the results to metrics.jsonl / TensorBoard and
    keeps `checkpoints/best.pt` (generator and config) for the best value of `eval.best_metric`."""

    def __init__(self, cfg: Config, run_dir: Path, device: torch.device, dataset):
        """`dataset`: the loaded training set, the reference when `eval.reference` is empty."""
        e = cfg.eval
        self.cfg = cfg
        self.evaluator = Evaluator(e.metrics, e.backbone, device, e.inception_weights, e.vgg16_weights,
                                   batch_size=e.batch_size, progress=False, option="eval.metrics")
        self.best_metric = e.best_metric or self.evaluator.headlines()[0]
        if self.best_metric not in self.evaluator.headlines():
            raise ConfigError(f"eval.best_metric: '{e.best_metric}' is not a result of eval.metrics "
                              f"(choose from {', '.join(self.evaluator.headlines())})")
        self.reference = reference_stats(
            self.evaluator, e.reference or cfg.data.name, data_root=cfg.data.root, split=cfg.data.split,
            resolution=cfg.data.resolution, channels=cfg.data.channels, crop=cfg.data.crop,
            max_images=e.reference_samples, batch_size=e.batch_size,
            workers=0 if isinstance(dataset, data.ArrayDataset) else cfg.data.workers,
            training_set=None if e.reference else (dataset, cfg.data))
        self.best_path = checkpoint.checkpoint_dir(run_dir) / BEST
        self.best = self._recorded_best()

    def __call__(self, step: int, G: torch.nn.Module, log: RunLog, state: dict) -> dict[str, float]:
        """Evaluate `G` at `step`; `state` is the checkpoint content saved as best.pt when the result improves."""
        e = self.cfg.eval
        results = self.evaluator(generator_batches(G, e.num_samples, self.cfg.train.seed, e.batch_size),
                                 e.num_samples, self.reference)
        name = self.best_metric
        log.write({"step": step} | {f"eval/{k}": v for k, v in results.items()})
        value = results[name]
        sign = 1 if name in HIGHER_IS_BETTER else -1
        if math.isfinite(value) and (self.best is None or sign * value > sign * self.best):
            self.best = value
            atomic_write_bytes(self.best_path, checkpoint.serialize(state | {"eval": {"metric": name, "value": value}}))
            log.info(f"eval step {step}: best {name} {value:.4g}, saved {self.best_path}")
        return results

    def _recorded_best(self) -> float | None:
        """The value stored in an existing best.pt, so a resumed run keeps its best checkpoint."""
        if not self.best_path.is_file():
            return None
        return checkpoints.load(self.best_path).get("eval", {}).get("value")
