"""Reference statistics: what the metrics need of the real images, computed once and cached as `.npz`.

A stats file holds, per feature extractor (inception, efficientnet-lite0, vgg16, swd), the mean and covariance of
its Fréchet feature and a capped sample of its features (for KID, precision / recall, SWD), with metadata: the
image source (dataset, split, resolution, crop), the extractor, its weights' sha256 and the preprocessing.
Statistics made by a different extractor, weights or preprocessing are refused, never silently compared.
"""

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ConfigError, UserError
from ..files import atomic_write_bytes, keyed_path
from .fid import gaussian_stats

FORMAT = "sagan-reference-stats-1"
MAX_FEATURES = 50_000  # feature rows kept per set: the standard 50k for precision / recall
# The feature each network's Fréchet distance uses; others keep only their feature samples.
FRECHET_FEATURE = {"inception": "pool3", "efficientnet-lite0": "pool"}
# The features of each extractor that metrics compare with the reference (None: all of them).
REFERENCE_FEATURES = {"inception": ["pool3"], "efficientnet-lite0": ["pool"], "vgg16": ["fc2"], "swd": None}
# Fields that must agree before two sets of features are compared.
IDENTITY = ("extractor", "weights_sha256", "preprocessing")


@dataclass
class FeatureStats:
    """One extractor's statistics of one image set: `meta` (see IDENTITY, plus `source` and `count`) and arrays
    `{feature}.features`, and `{feature}.mu` / `{feature}.sigma` for the Fréchet feature."""

    meta: dict
    arrays: dict[str, np.ndarray]

    def features(self, name: str) -> np.ndarray:
        return self.arrays[f"{name}.features"]

    def gaussian(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        return self.arrays[f"{name}.mu"], self.arrays[f"{name}.sigma"]


def summarise(features: dict[str, np.ndarray], meta: dict, max_features: int = MAX_FEATURES,
              seed: int = 0) -> FeatureStats:
    """Statistics of one extractor's features of a whole image set; `meta` holds IDENTITY, `source` and `count`."""
    extractor = meta["extractor"]
    keep = REFERENCE_FEATURES[extractor] or list(features)
    arrays = {}
    rng = np.random.RandomState(seed)
    for name in keep:
        x = features[name]
        if name == FRECHET_FEATURE.get(extractor):
            arrays[f"{name}.mu"], arrays[f"{name}.sigma"] = gaussian_stats(x)
        if len(x) > max_features:
            x = x[np.sort(rng.choice(len(x), max_features, replace=False))]
        arrays[f"{name}.features"] = np.ascontiguousarray(x, dtype=np.float32)
    return FeatureStats(dict(meta), arrays)


def check_compatible(stats: FeatureStats, meta: dict, where: str) -> None:
    """Raise a one-line ConfigError unless `stats` were made by the same extractor, weights and preprocessing."""
    for key in IDENTITY:
        if stats.meta.get(key) != meta.get(key):
            raise ConfigError(f"{where}: reference statistics have {key} '{stats.meta.get(key)}' but the features "
                              f"to compare have '{meta.get(key)}'; recompute the statistics with the same settings")


def save_stats(path: str | os.PathLike, stats: dict[str, FeatureStats]) -> None:
    """Write {extractor: FeatureStats} as one .npz, atomically."""
    arrays = {"format": np.array(FORMAT)}
    for extractor, s in stats.items():
        arrays[f"{extractor}/meta"] = np.array(json.dumps(s.meta, sort_keys=True))
        arrays |= {f"{extractor}/{key}": value for key, value in s.arrays.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    atomic_write_bytes(path, buffer.getvalue())


def load_stats(path: str | os.PathLike) -> dict[str, FeatureStats]:
    """Read a stats file written by `save_stats` (no pickles)."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {key: f[key] for key in f.files}
    except (OSError, ValueError) as e:
        raise UserError(f"{path}: not a readable stats .npz ({str(e).splitlines()[0]})") from None
    if "format" not in arrays or str(arrays.pop("format")) != FORMAT:
        raise UserError(f"{path}: not a sagan reference-stats file (make one with sagan evaluate --save-stats)")
    stats: dict[str, FeatureStats] = {}
    for key, value in arrays.items():
        extractor, name = key.split("/", 1)
        s = stats.setdefault(extractor, FeatureStats({}, {}))
        if name == "meta":
            s.meta = json.loads(str(value))
        else:
            s.arrays[name] = value
    return stats


def cache_path(cache_dir: str | os.PathLike, key: dict) -> Path:
    """The cache file of the statistics identified by `key` (image source + extractor identity)."""
    return keyed_path(cache_dir, key["extractor"], key, ".npz")


