"""Walking between samples: spherical interpolation of Gaussian latents, and between classes of a conditional
generator by blending its class embeddings."""

from contextlib import contextmanager

import numpy as np
import torch
from torch import nn

from ..images import make_grid
from ..models import Generator
from ..models.base import seeded, truncated_normal


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation between rows of `z0` and `z1`: unlike a straight line, the path keeps the norm a
    Gaussian latent typically has, so the middle images are as sharp as the ends (White 2016)."""
    cos = (nn.functional.normalize(z0, dim=-1) * nn.functional.normalize(z1, dim=-1)).sum(-1, keepdim=True)
    omega = torch.arccos(cos.clamp(-1, 1))
    sin = torch.sin(omega)
    straight = sin.abs() < 1e-6  # (anti)parallel latents: fall back to the straight line
    safe = torch.where(straight, torch.ones_like(sin), sin)
    curved = (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / safe
    return torch.where(straight, (1 - t) * z0 + t * z1, curved)


def latent_rows(G: Generator, pairs: int, steps: int, seed: int = 0) -> np.ndarray:
    """A grid with one row per pair of random latents, `steps` images from one to the other (same class per row
    for a conditional model)."""
    rng = seeded(seed)
    z0, z1 = torch.randn(2, pairs, G.z_dim, generator=rng)
    z = torch.stack([slerp(z0, z1, t) for t in torch.linspace(0, 1, steps).tolist()], dim=1).flatten(0, 1)
    labels = G.make_labels(pairs, None, rng)
    labels = None if labels is None else labels.repeat_interleave(steps)
    return make_grid(G.generate(z, labels), steps)


def seed_path(G: Generator, seeds: tuple[int, int], frames: int, truncation: float | None = None,
              label: int | None = None, batch_size: int = 64) -> tuple[np.ndarray, torch.Tensor | None]:
    """`frames` images along the spherical path from seed A's latent to seed B's (the latents G.sample draws for
    those seeds), and their one class (`label`, or seed A's) when conditional."""
    ends = [truncated_normal((1, G.z_dim), truncation, seeded(s)) for s in seeds]
    z = torch.cat([slerp(ends[0], ends[1], t) for t in torch.linspace(0, 1, frames).tolist()])
    labels = G.make_labels(1, label, seeded(seeds[0]))
    labels = None if labels is None else labels.expand(frames).clone()
    return G.generate(z, labels, batch_size), labels


def class_pairs(num_classes: int, pairs: int, seed: int = 0) -> list[tuple[int, int]]:
    """`pairs` random (from, to) pairs of different classes."""
    rng = seeded(seed)
    start = torch.randint(num_classes, (pairs,), generator=rng)
    end = (start + torch.randint(1, num_classes, (pairs,), generator=rng)) % num_classes
    return list(zip(start.tolist(), end.tolist()))


def class_rows(G: Generator, classes: list[tuple[int, int]], steps: int, seed: int = 0) -> np.ndarray:
    """A grid with one row per (from, to) pair of classes: one latent per row, its class embedding blended from
    the first class to the second in `steps` steps."""
    rng = seeded(seed)
    z = torch.randn(len(classes), G.z_dim, generator=rng).repeat_interleave(steps, dim=0)
    start, end = (torch.tensor(c).repeat_interleave(steps) for c in zip(*classes))
    t = torch.linspace(0, 1, steps).repeat(len(classes))
    with blended_classes(G, end, t):
        images = G.generate(z, start, batch_size=len(z))  # one batch: the blend weights are per sample
    return make_grid(images, steps)


@contextmanager
def blended_classes(G: nn.Module, end: torch.Tensor, t: torch.Tensor):
    """Inside, every class embedding of G looked up for labels y is `lerp(E[y], E[end], t)`, per sample. A
    conditional generator's only embeddings are its conditional batch norms' per-class gains and biases."""
    def blend(module: nn.Embedding, args: tuple, output: torch.Tensor) -> torch.Tensor:
        target = nn.functional.embedding(end.to(output.device), module.weight)
        return torch.lerp(output, target, t.to(output.device)[:, None])

    handles = [m.register_forward_hook(blend) for m in G.modules() if isinstance(m, nn.Embedding)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()
