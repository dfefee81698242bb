"""The figures of `sagan visualize`, one function each, registered in FIGURES: each takes a run directory or
checkpoint file and its options, and returns {name: PNG image (uint8 H x W x 3) or encoded PNG bytes}."""

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from .. import checkpoints, data
from ..config import data_flags, from_dict, set_value
from ..errors import ConfigError, DataError, require_positive
from ..files import atomic_write_bytes
from ..images import save_png
from ..models.base import seeded
from ..runtime import resolve_device
from . import attention, curves, interpolate, saliency, sheets

Figures = dict[str, np.ndarray | bytes]


def samples(checkpoint, *, num: int = 64, seed: int = 0, truncation: float | None = None,
            device: str = "auto") -> Figures:
    """A sample grid of the EMA generator (conditional: one row per class); `truncation` T redraws |z| > T."""
    require_positive(num=num)
    G = checkpoints.load_generator(checkpoint, resolve_device(device))
    return {"samples": sheets.sample_grid(G, num, seed, truncation)}


def compare(checkpoint, *, num: int = 32, seed: int = 0, data_name: str | None = None, data_root=None,
            device: str = "auto") -> Figures:
    """Real and generated images side by side in one labelled sheet; real ones from `data_name` / `data_root`
    (default: the run's dataset)."""
    require_positive(num=num)
    state = checkpoints.load(checkpoint)
    G = checkpoints.generator(state, resolve_device(device))
    real, labels, description = _real_images(state, num, seed, data_name, data_root)
    sheet = sheets.comparison(real, G.sample(num, seed, labels), f"real: {description}",
                              f"generated: EMA generator at step {state['step']:,}",
                              f"{checkpoints.run_dir(checkpoint).resolve().name}: real and generated images")
    return {"compare": sheet}


def attention_maps(checkpoint, *, layer: str = "all", queries: int = 4, num: int = 8, net: str = "g", seed: int = 0,
                   data_name: str | None = None, data_root=None, device: str = "auto") -> Figures:
    """Attention maps of `queries` query points per image, for each attention layer of G (`net="g"`, on its
    samples) or D (`net="d"`, on real images of the run's or the given dataset)."""
    require_positive(num=num, queries=queries)
    if net not in ("g", "d"):
        raise ConfigError(f"--net: '{net}' is not one of g, d")
    state = checkpoints.load(checkpoint)
    device = resolve_device(device)
    G, D = checkpoints.networks(state, device) if net == "d" else (checkpoints.generator(state, device), None)
    model = G if net == "g" else D
    if not attention.layers(model):
        raise ConfigError(f"the {'generator' if net == 'g' else 'discriminator'} of this run has no self-attention "
                          "layers")
    with attention.Recorder(model, layer) as recorder:
        if net == "g":
            images = G.sample(num, seed)
        else:
            images, labels, _ = _real_images(state, num, seed, data_name, data_root)
            with torch.no_grad():
                D(attention.to_tensor(images).to(device), None if labels is None else labels.to(device))
    figures = {}
    for name, maps in recorder.maps.items():
        points = attention.spread_queries(maps.feature_size, queries, seed)
        title = f"{net.upper()} {name}, step {state['step']:,}"
        figures[f"attention-{net.upper()}-{name}"] = attention.figure(images, maps, points, title)
    return figures


def saliency_maps(checkpoint, *, num: int = 8, block: str | None = None, target_class: int | None = None,
                  images: str = "real", seed: int = 0, data_name: str | None = None, data_root=None,
                  device: str = "auto") -> Figures:
    """Where D's decision comes from on `num` real images (of the run's or the given dataset) or generated ones:
    its input gradient and Grad-CAM on `block` (default: its last block with 8x8 outputs or more); with
    `target_class`, of that class's projection term."""
    require_positive(num=num)
    if images not in ("real", "generated"):
        raise ConfigError(f"--images: '{images}' is not one of real, generated")
    state = checkpoints.load(checkpoint)
    G, D = checkpoints.networks(state, resolve_device(device))
    if images == "real":
        pictures, labels, _ = _real_images(state, num, seed, data_name, data_root)
    else:
        labels = G.make_labels(num, None, seeded(seed + 1))
        pictures = G.sample(num, seed, labels)
    title = f"D on {images} images, step {state['step']:,}"
    return {"saliency": saliency.figure(D, pictures, labels, block, target_class, title)}


def interpolations(checkpoint, *, steps: int = 8, pairs: int = 4, seed: int = 0, device: str = "auto") -> Figures:
    """Latent interpolation rows (slerp), and class interpolation rows for conditional generators."""
    require_positive(steps=steps, pairs=pairs)
    G = checkpoints.load_generator(checkpoint, resolve_device(device))
    figures = {"interpolate-latent": interpolate.latent_rows(G, pairs, steps, seed)}
    if G.num_classes > 1:
        figures["interpolate-class"] = interpolate.class_rows(
            G, interpolate.class_pairs(G.num_classes, pairs, seed), steps, seed)
    return figures


def training_curves(run_dir) -> Figures:
    """Training curves from RUN/metrics.jsonl (needs the viz extra)."""
    run_dir = Path(run_dir)
    records = curves.read_metrics(run_dir)
    if not records:
        raise DataError(f"{run_dir / 'metrics.jsonl'} holds no records yet: nothing to draw")
    return {f"curves-{name}": png for name, png in curves.figures(records, run_dir.resolve().name).items()}


FIGURES: dict[str, Callable[..., Figures]] = {
    "samples": samples,
    "compare": compare,
    "attention": attention_maps,
    "saliency": saliency_maps,
    "interpolate": interpolations,
    "curves": training_curves,
}


def write(figures: Figures, out: str | Path) -> list[Path]:
    """Write each figure as OUT/NAME.png; returns the paths."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} exists and is not a folder")
    paths = []
    for name, figure in figures.items():
        path = out / f"{name}.png"
        if isinstance(figure, bytes):
            atomic_write_bytes(path, figure)
        else:
            save_png(figure, path)
        paths.append(path)
    return paths


def _real_images(state: dict, num: int, seed: int, data_name: str | None, data_root):
    """`num` random images (NHWC uint8), their labels (None if unconditional) and the dataset's description, from
    `data_name` or the run's dataset, at the run's resolution and channels."""
    cfg = from_dict(state["config"])
    if data_name:
        if data_name != cfg.data.name:
            cfg.data.root = None  # the run's folder belongs to the run's dataset
        for key, value in data_flags(data_name).items():
            set_value(cfg, key, value, source="--data")
    if data_root:
        cfg.data.root = data_root
    dataset = data.from_config(cfg.data)
    images, labels = sheets.real_images(dataset, num, seed)
    return images, labels if cfg.model.num_classes else None, dataset.description

