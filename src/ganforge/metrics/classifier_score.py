"""Classifier score: the Inception Score (Salimans et al. 2016, arXiv:1606.03498) on our extractor's classes.

exp(E_x KL(p(y|x) || p(y))): high when each sample is classified confidently (quality) and the
classes are used evenly (diversity); at most the number of classes. Unlike the reference code,
which averages over 10 splits, it is computed once over all samples (so it does not depend on a
split size), on the shipped 10-class extractor rather than Inception's 1,008 classes.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import ConfigError

EPS = 1e-12
CHUNK = 4096  # rows a step: stacked-mnist's (26,000, 1,000) probabilities would take ~1 GB of float64 temporaries


def classifier_score(probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) of (N, K) class probabilities (rows summing to 1)."""
    p = np.asarray(probs)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ConfigError(f"the classifier score needs (N, K) class probabilities; got shape {p.shape}")
    log_marginal = np.log(_mean_rows(p) + EPS)  # log p(y)
    kl_sum = 0.0
    for start in range(0, p.shape[0], CHUNK):
        rows = p[start : start + CHUNK].astype(np.float64)
        kl_sum += float((rows * (np.log(rows + EPS) - log_marginal)).sum())
    return float(np.exp(kl_sum / p.shape[0]))


def _mean_rows(p: np.ndarray) -> np.ndarray:
    """(1, K) float64 mean of the rows of p, a chunk at a time."""
    total = sum(p[start : start + CHUNK].astype(np.float64).sum(axis=0) for start in range(0, p.shape[0], CHUNK))
    return np.asarray(total).reshape(1, -1) / p.shape[0]
