"""Improved precision and recall (Kynkäänniemi et al. 2019) and density / coverage (Naeem et al. 2020).

Each set's k-NN radii define a manifold (a union of balls); precision is the fraction of generated samples inside
the real manifold, recall the fraction of real samples inside the generated one. Distances are computed in float64
blocks of rows, so 50k x 50k sets need memory for one block, not the whole distance matrix, on `device` (default
the CPU; a GPU makes 50k x 50k x 4096 a matter of seconds instead of hours).
"""

from collections.abc import Callable, Iterator

import numpy as np
import torch

from ..errors import DataError

BLOCK_ELEMENTS = 1 << 24  # distances held at once (128 MiB in float64)


def precision_recall(feats_real, feats_gen, k: int = 3, device=None) -> tuple[float, float]:
    """(precision, recall): a sample is inside a manifold when its distance to some member is `<=` that member's
    distance to its k-th nearest neighbour in its own set (itself excluded), as in the authors' code."""
    real, gen = _as_tensor(feats_real, device), _as_tensor(feats_gen, device)
    real_radii, gen_radii = knn_radii(real, k), knn_radii(gen, k)
    precision = _fraction(gen, real, lambda d: (d <= real_radii).any(dim=1))
    recall = _fraction(real, gen, lambda d: (d <= gen_radii).any(dim=1))
    return precision, recall


def density_coverage(feats_real, feats_gen, k: int = 5, device=None) -> tuple[float, float]:
    """(density, coverage) of Naeem et al. 2020 with their strict `<` and k = 5 default: density counts the real
    balls around each generated sample (/ k, so ~1 when the distributions match); coverage is the fraction of real
    balls that hold a generated sample."""
    real, gen = _as_tensor(feats_real, device), _as_tensor(feats_gen, device)
    real_radii = knn_radii(real, k)
    counts = torch.cat([(d < real_radii).sum(dim=1) for d in distance_blocks(gen, real)])
    covered = torch.cat([d.min(dim=1).values for d in distance_blocks(real, gen)]) < real_radii
    return float(counts.double().mean() / k), float(covered.double().mean())


def knn_radii(x: torch.Tensor, k: int) -> torch.Tensor:
    """Distance from each row of `x` to its k-th nearest other row."""
    if not 0 < k < len(x):
        raise DataError(f"k={k} nearest neighbours need more than {k} samples, got {len(x)}")
    # The (k+1)-th smallest distance, because each row is its own nearest neighbour at distance 0.
    return torch.cat([d.topk(k + 1, dim=1, largest=False).values[:, k] for d in distance_blocks(x, x)])


def distance_blocks(rows: torch.Tensor, cols: torch.Tensor) -> Iterator[torch.Tensor]:
    """Euclidean distances between `rows` and `cols`, one block of consecutive rows at a time."""
    step = max(1, BLOCK_ELEMENTS // max(1, len(cols)))
    for start in range(0, len(rows), step):
        yield torch.cdist(rows[start : start + step], cols)


def _fraction(probes: torch.Tensor, manifold: torch.Tensor, inside: Callable[[torch.Tensor], torch.Tensor]) -> float:
    hits = torch.cat([inside(d) for d in distance_blocks(probes, manifold)])
    return float(hits.double().mean())


def _as_tensor(features, device=None) -> torch.Tensor:
    x = torch.as_tensor(np.asarray(features), dtype=torch.float64, device=device)
    if x.ndim != 2:
        raise ValueError(f"need N x D features, got shape {tuple(x.shape)}")
    return x
