"""Sample grids and the labelled sheet of real next to generated images."""

import numpy as np
import torch

from ..images import make_grid
from ..models import Generator
from . import layout


def sample_grid(G: Generator, num: int, seed: int = 0, truncation: float | None = None,
                batch_size: int = 64) -> np.ndarray:
    """`num` samples of `G` as one grid, as square as possible (64 images: 8 x 8, 2-pixel padding); a conditional
    model gets one row per class with `num // classes` images each."""
    if not G.num_classes:
        return make_grid(G.sample(num, seed, None, batch_size, truncation))
    per_class = max(1, num // G.num_classes)
    labels = torch.arange(G.num_classes).repeat_interleave(per_class)
    return make_grid(G.sample(len(labels), seed, labels, batch_size, truncation), per_class)


def comparison(real: np.ndarray, generated: np.ndarray, real_title: str, generated_title: str,
               title: str) -> np.ndarray:
    """Two captioned grids side by side under a title; small images are enlarged to stay readable."""
    scale = layout.readable_scale(real.shape[1], 64)
    grids = [layout.caption(layout.upscale(make_grid(images), scale), text)
             for images, text in ((real, real_title), (generated, generated_title))]
    body = layout.stack(grids, gap=24)
    return layout.margin(layout.stack([layout.label(title, body.shape[1], size=16), body], axis=0))


def real_images(dataset, num: int, seed: int = 0) -> tuple[np.ndarray, torch.Tensor]:
    """`num` images drawn without replacement from `seed` (all if fewer) as uint8 NHWC, and their labels."""
    order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:num]
    items = [dataset[i] for i in order.tolist()]
    images = torch.stack([image for image, _ in items]).permute(0, 2, 3, 1).numpy()
    return images, torch.tensor([label for _, label in items])
