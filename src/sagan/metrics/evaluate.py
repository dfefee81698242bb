"""Scoring images: a generator or a set of images -> features of each network the metrics need -> metrics.

`Evaluator` builds the feature extractors once (so training can evaluate repeatedly), extracts features batch by
batch with a progress bar (images/s, ETA), and computes the requested metrics against reference statistics
(`stats.FeatureStats`, computed once per image source and cached). Metrics are looked up by name in `METRICS`.
"""

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import torch
from tqdm.auto import tqdm

from ..errors import ConfigError
from .fid import fid
from .inception_score import inception_score
from .kid import kid
from .precision_recall import density_coverage, precision_recall
from .stats import FRECHET_FEATURE, FeatureStats, cache_path, check_compatible, load_stats, save_stats, summarise
from .swd import swd

Features = dict[str, np.ndarray]
BACKBONES = ("inception", "efficientnet-lite0", "swd")
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000
IS_SPLITS = 10
# Result names where a larger value is better (for picking the best checkpoint); all others are distances.
HIGHER_IS_BETTER = ("is", "precision", "recall", "precision_inception", "recall_inception", "density", "coverage")


@dataclass(frozen=True)
class Metric:
    """`extractor`: the network whose features it reads (None: the --backbone network); `compute(generated
    features, reference stats or None, extractor name, device)` -> named values; `headlines`: its main result
    names (before `_label` for backbone metrics), the ones that can pick the best checkpoint."""

    extractor: str | None
    compute: Callable[[Features, FeatureStats | None, str, torch.device | None], dict[str, float]]
    headlines: tuple[str, ...]
    needs_reference: bool = True


def _label(metric: str, extractor: str) -> str:
    """Published names for FID-Inception numbers only; other networks' numbers are named after the network."""
    if extractor == "inception":
        return metric
    return f"{'fd' if metric == 'fid' else metric}_{extractor.replace('-', '_')}"


def _fid(gen: Features, ref: FeatureStats, extractor: str, device) -> dict[str, float]:
    feature = FRECHET_FEATURE[extractor]
    return {_label("fid", extractor): fid(gen[feature], ref.gaussian(feature))}


def _kid(gen: Features, ref: FeatureStats, extractor: str, device) -> dict[str, float]:
    feature = FRECHET_FEATURE[extractor]
    x, y = gen[feature], ref.features(feature)
    size = min(KID_SUBSET_SIZE, len(x), len(y))
    mean, std = kid(x, y, subsets=KID_SUBSETS, subset_size=size)
    name = _label("kid", extractor)
    # Fewer images than the standard subset size: say so, since such a KID is not the published protocol's.
    return {name: mean, f"{name}_std": std} | ({f"{name}_subset_size": size} if size < KID_SUBSET_SIZE else {})


def _is(gen: Features, ref: None, extractor: str, device) -> dict[str, float]:
    splits = min(IS_SPLITS, len(gen["logits_unbiased"]))
    mean, std = inception_score(gen["logits_unbiased"], splits=splits)
    return {"is": mean, "is_std": std} | ({"is_splits": splits} if splits < IS_SPLITS else {})


def _pr(gen: Features, ref: FeatureStats, extractor: str, device) -> dict[str, float]:
    feature, suffix = ("fc2", "") if extractor == "vgg16" else ("pool3", "_inception")
    precision, recall = precision_recall(ref.features(feature), gen[feature], device=device)
    return {f"precision{suffix}": precision, f"recall{suffix}": recall}


def _dc(gen: Features, ref: FeatureStats, extractor: str, device) -> dict[str, float]:
    density, coverage = density_coverage(ref.features("fc2"), gen["fc2"], device=device)
    return {"density": density, "coverage": coverage}


def _swd(gen: Features, ref: FeatureStats, extractor: str, device) -> dict[str, float]:
    return swd(ref_descriptors(ref), gen)


def ref_descriptors(ref: FeatureStats) -> Features:
    return {key.removesuffix(".features"): value for key, value in ref.arrays.items() if key.endswith(".features")}


METRICS: dict[str, Metric] = {
    "fid": Metric(None, _fid, ("fid",)),  # Fréchet distance (FID with the inception backbone)
    "kid": Metric(None, _kid, ("kid",)),  # kernel distance, 100 subsets of 1000
    "is": Metric("inception", _is, ("is",), needs_reference=False),  # Inception Score, 10 splits
    "pr": Metric("vgg16", _pr, ("precision", "recall")),  # precision / recall on VGG16 fc2, k = 3
    "pr_inception": Metric("inception", _pr, ("precision_inception", "recall_inception")),  # ... on pool3
    "dc": Metric("vgg16", _dc, ("density", "coverage")),  # density / coverage on VGG16 fc2, k = 5
    "swd": Metric("swd", _swd, ("swd",)),  # multi-scale sliced Wasserstein distance, no network
}


def parse_metrics(text: str | list[str], backbone: str, option: str = "--metrics") -> list[str]:
    """Validate metric names (comma-separated or a list) for a backbone; raises a one-line ConfigError naming
    `option`, where the names came from."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    if not names:
        raise ConfigError(f"{option}: name at least one metric")
    if backbone not in BACKBONES:
        raise ConfigError(f"backbone '{backbone}' is not one of {', '.join(BACKBONES)}")
    for name in names:
        if name not in METRICS:
            raise ConfigError(f"{option}: unknown metric '{name}'; choose from {', '.join(METRICS)}")
        if METRICS[name].extractor is None and backbone == "swd":
            raise ConfigError(f"{option}: {name} needs a network backbone (inception or efficientnet-lite0), "
                              f"not swd")
    return names


def headlines(metrics: list[str], backbone: str) -> list[str]:
    """The main result names of `metrics` with `backbone`, in order (see `Metric.headlines`)."""
    return [_label(h, backbone) if METRICS[name].extractor is None else h
            for name in metrics for h in METRICS[name].headlines]


def default_metrics(backbone: str) -> list[str]:
    return {"inception": ["fid", "is"], "efficientnet-lite0": ["fid", "kid"], "swd": ["swd"]}[backbone]


class Evaluator:
    """Scores images with `metrics` (names of METRICS); networks are built once, on `device`.

    `inception_weights` / `vgg16_weights`: weight file paths (None: environment variable, torch hub cache, or a
    download; see `weights.fetch_weights`). `resize`: the Inception preprocessing, "tf1" or "clean";
    `precision`: the Inception arithmetic, "fp32" (comparable) or "bf16" (faster, labelled, not comparable).
    """

    def __init__(self, metrics: list[str], backbone: str = "inception", device=None, inception_weights=None,
                 vgg16_weights=None, resize: str = "tf1", batch_size: int = 64, progress: bool = True,
                 option: str = "--metrics", precision: str = "fp32"):
        self.metrics = parse_metrics(metrics, backbone, option)
        self.backbone = backbone
        self.batch_size, self.progress = batch_size, progress
        self.device = torch.device(device) if device is not None else None
        needed = {METRICS[name].extractor or backbone for name in self.metrics}
        self.extractors = {name: _build_extractor(name, device, inception_weights, vgg16_weights, resize, precision)
                           for name in sorted(needed)}

    def identity(self, extractor: str) -> dict:
        """What must match between two feature sets of `extractor` before they are compared."""
        ex = self.extractors[extractor]
        return {"extractor": extractor, "weights_sha256": ex.weights_sha256, "preprocessing": ex.preprocessing}

    def headlines(self) -> list[str]:
        """The main result names of the metrics, in order (see `Metric.headlines`)."""
        return headlines(self.metrics, self.backbone)

    @property
    def reference_extractors(self) -> list[str]:
        return sorted({METRICS[n].extractor or self.backbone for n in self.metrics if METRICS[n].needs_reference})

    def features(self, batches: Iterable[torch.Tensor], total: int, extractors: Iterable[str] | None = None,
                 desc: str = "features") -> dict[str, Features]:
        """Features of uint8 N x C x H x W batches (`total` images in all) for each named extractor."""
        names = list(self.extractors if extractors is None else extractors)
        parts: dict[str, dict[str, list[np.ndarray]]] = {name: {} for name in names}
        seen = 0
        for name in names:
            getattr(self.extractors[name], "reset", lambda: None)()
        with tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, disable=not self.progress) as bar:
            for batch in batches:
                for name in names:
                    ex = self.extractors[name]
                    limit = getattr(ex, "max_images", None) or total
                    if seen < limit:
                        for key, value in ex(batch[: limit - seen]).items():
                            parts[name].setdefault(key, []).append(_numpy(value))
                seen += len(batch)
                bar.update(len(batch))
        if seen == 0:
            raise ConfigError("no images to evaluate")
        return {name: {key: np.concatenate(chunks) for key, chunks in feats.items()} for name, feats in parts.items()}

    def reference(self, batches: Callable[[], Iterable[torch.Tensor]], total: int, source: dict,
                  cache_dir=None) -> dict[str, FeatureStats]:
        """Statistics of the real images for every extractor the metrics compare, from the cache in `cache_dir`
        when it holds them for this `source` (a dict naming dataset, split, resolution, crop ...), else computed
        from `batches()` (one pass for all missing extractors) and cached."""
        stats, missing = {}, []
        for name in self.reference_extractors:
            path = cache_path(cache_dir, source | self.identity(name)) if cache_dir is not None else None
            if path is not None and path.is_file():
                stats[name] = load_stats(path)[name]
            else:
                missing.append(name)
        if missing:
            feats = self.features(batches(), total, missing, desc="reference")
            for name in missing:
                stats[name] = summarise(feats[name], self.identity(name) | {"source": source, "count": total})
                if cache_dir is not None:
                    save_stats(cache_path(cache_dir, source | self.identity(name)), {name: stats[name]})
        return stats

    def check_reference(self, reference: dict[str, FeatureStats] | None) -> None:
        """Raise a one-line ConfigError unless `reference` has statistics, made the same way, for every metric."""
        for name in self.metrics:
            extractor = METRICS[name].extractor or self.backbone
            if METRICS[name].needs_reference:
                if not reference or extractor not in reference:
                    have = ", ".join(reference or {}) or "none"
                    raise ConfigError(f"metric {name} needs reference statistics of {extractor} features "
                                      f"(the reference has: {have})")
                check_compatible(reference[extractor], self.identity(extractor), f"metric {name}")

    def score(self, features: dict[str, Features], reference: dict[str, FeatureStats] | None) -> dict[str, float]:
        """The metrics of generated `features` (from `self.features`) against `reference` statistics."""
        self.check_reference(reference)
        results: dict[str, float] = {}
        for name in self.metrics:
            extractor = METRICS[name].extractor or self.backbone
            ref = reference[extractor] if METRICS[name].needs_reference else None
            results |= METRICS[name].compute(features[extractor], ref, extractor, self.device)
        return results

    def __call__(self, batches: Iterable[torch.Tensor], total: int,
                 reference: dict[str, FeatureStats] | None) -> dict[str, float]:
        """Features of `total` generated images, then the metrics; the reference is checked before any work."""
        self.check_reference(reference)
        return self.score(self.features(batches, total, desc="generated"), reference)


def generator_batches(G: torch.nn.Module, n: int, seed: int = 0, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """uint8 N x C x H x W batches of `G.sample`, generated on a background thread while the caller extracts
    features of the previous batch. Batch i samples with a seed derived from (seed, i): the same images every time."""
    seeds = np.random.SeedSequence(seed).generate_state((n + batch_size - 1) // batch_size)
    out: queue.Queue = queue.Queue(maxsize=2)
    stop = threading.Event()

    def put(item) -> bool:
        while not stop.is_set():
            try:
                out.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for i, start in enumerate(range(0, n, batch_size)):
                b = min(batch_size, n - start)
                images = G.sample(b, seed=int(seeds[i]), batch_size=b)
                if not put(torch.from_numpy(images).permute(0, 3, 1, 2)):
                    return
        except BaseException as e:  # noqa: BLE001 - handed to the consumer, which re-raises it
            put(e)
            return
        put(None)

    thread = threading.Thread(target=produce, daemon=True, name="sagan-sampling")
    thread.start()
    try:
        while (item := out.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        thread.join()


def array_batches(images: np.ndarray, batch_size: int = 64) -> Iterator[torch.Tensor]:
    """uint8 N x H x W x C images as N x C x H x W tensor batches."""
    for start in range(0, len(images), batch_size):
        yield torch.from_numpy(np.ascontiguousarray(images[start : start + batch_size])).permute(0, 3, 1, 2)


def _build_extractor(name: str, device, inception_weights, vgg16_weights, resize: str, precision: str):
    if name == "inception":
        from .inception import InceptionFeatures

        return InceptionFeatures(inception_weights, resize=resize, device=device, precision=precision)
    if name == "vgg16":
        from .vgg import VGG16Features

        return VGG16Features(vgg16_weights, device=device)
    if name == "efficientnet-lite0":
        from .efficientnet import EfficientNetLite0Features

        return EfficientNetLite0Features(device=device)
    from .swd import SWDDescriptors

    return SWDDescriptors()


def _numpy(x) -> np.ndarray:
    return x.detach().float().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
