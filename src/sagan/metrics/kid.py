"""Kernel Inception Distance (Bińkowski et al. 2018), subset for subset as torch-fidelity computes it."""

import numpy as np

from ..errors import DataError


def kid(feats_gen, feats_real, subsets: int = 100, subset_size: int = 1000, seed: int = 2020) -> tuple[float, float]:
    """Mean and population std of the unbiased MMD^2 with the kernel (x.y / d + 1)^3 over `subsets` random subsets.

    One `np.random.RandomState(seed)` draws each subset's rows, generated set first, then real, each
    `choice(n, subset_size, replace=False)`: the reference's order, so the same seed gives the same subsets.
    """
    gen, real = np.asarray(feats_gen), np.asarray(feats_real)
    if gen.ndim != 2 or real.ndim != 2 or gen.shape[1] != real.shape[1]:
        raise ValueError(f"need two N x D feature sets of the same D, got {gen.shape} and {real.shape}")
    if min(len(gen), len(real)) < subset_size or subset_size < 2:
        raise DataError(f"KID needs subsets of 2 or more images from each set: subset size {subset_size}, "
                        f"{len(gen)} generated and {len(real)} real images")
    rng = np.random.RandomState(seed)
    mmds = np.empty(subsets)
    for i in range(subsets):
        x = gen[rng.choice(len(gen), subset_size, replace=False)].astype(np.float64)
        y = real[rng.choice(len(real), subset_size, replace=False)].astype(np.float64)
        mmds[i] = polynomial_mmd2(x, y)
    return float(mmds.mean()), float(mmds.std())


def polynomial_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between equal-sized samples under the cubic polynomial kernel."""
    d, m = x.shape[1], len(x)
    k_xx, k_yy, k_xy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
    off_diagonal = k_xx.sum() - np.trace(k_xx) + k_yy.sum() - np.trace(k_yy)
    return float(off_diagonal / (m * (m - 1)) - 2 * k_xy.sum() / (m * m))
