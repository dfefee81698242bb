"""Inception Score (Salimans et al. 2016) as torch-fidelity and the TTUR code compute it."""

import numpy as np

from ..errors import DataError


def inception_score(logits_unbiased, splits: int = 10, shuffle: bool = False, seed: int = 2020) -> tuple[float, float]:
    """Mean and population std over `splits` contiguous splits of exp(E_x KL(p(y|x) || p(y))).

    `logits_unbiased` are the FID Inception logits without the fc bias (N x 1008), the ones the reference uses.
    With `shuffle`, rows are first permuted by `np.random.RandomState(seed).permutation(N)`, as torch-fidelity does.
    """
    logits = np.asarray(logits_unbiased, dtype=np.float64)
    if logits.ndim != 2 or len(logits) < splits:
        raise DataError(f"inception_score needs N x classes logits with N >= splits={splits}, got {logits.shape}")
    n = len(logits)
    if shuffle:
        logits = logits[np.random.RandomState(seed).permutation(n)]
    log_p = logits - logits.max(axis=1, keepdims=True)
    log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
    p = np.exp(log_p)
    scores = []
    for i in range(splits):
        part = slice(i * n // splits, (i + 1) * n // splits)
        log_q = np.log(p[part].mean(axis=0, keepdims=True))
        kl = (p[part] * (log_p[part] - log_q)).sum(axis=1).mean()
        scores.append(np.exp(kl))
    return float(np.mean(scores)), float(np.std(scores))
