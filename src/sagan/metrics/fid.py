"""Fréchet distance between Gaussians fitted to two feature sets (Heusel et al. 2017): FID on FID-Inception pool3."""

import numpy as np

from ..errors import DataError


def gaussian_stats(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and unbiased covariance (N - 1, as `np.cov`) of N x D features, in float64."""
    features = np.asarray(features, dtype=np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise DataError(f"FID needs at least 2 images per set (N x D features, N >= 2), got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False)


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """||mu1 - mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)).

    tr sqrt(S1 S2) is the sum of the square roots of the eigenvalues of S1 S2 (real and non-negative in exact
    arithmetic; tiny negative or complex parts from rounding are taken through complex sqrt and dropped), which
    avoids `scipy.linalg.sqrtm` and its deprecated `disp` argument.
    """
    mu1, mu2 = np.asarray(mu1, dtype=np.float64), np.asarray(mu2, dtype=np.float64)
    sigma1, sigma2 = np.asarray(sigma1, dtype=np.float64), np.asarray(sigma2, dtype=np.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError(f"statistics of different dimensions: {mu1.shape}, {sigma1.shape} vs {mu2.shape}, "
                         f"{sigma2.shape}")
    diff = mu1 - mu2
    trace_sqrt = np.sqrt(np.linalg.eigvals(sigma1 @ sigma2).astype(np.complex128)).real.sum()
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt)


def fid(feats_a, feats_b) -> float:
    """Fréchet distance of two feature sets, each an N x D array or its `(mu, sigma)` from `gaussian_stats`."""
    return frechet_distance(*_stats(feats_a), *_stats(feats_b))


def _stats(x) -> tuple[np.ndarray, np.ndarray]:
    return tuple(x) if isinstance(x, tuple) else gaussian_stats(x)
