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


def classifier_score(probs: np.ndarray) -> float:
    """exp(mean KL(p(y|x) || p(y))) of (N, K) class probabilities (rows summing to 1)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < 1:
        raise ConfigError(f"the classifier score needs (N, K) class probabilities; got shape {p.shape}")
    marginal = p.mean(axis=0, keepdims=True)  # p(y)
    kl = (p * (np.log(p + EPS) - np.log(marginal + EPS))).sum(axis=1)
    return float(np.exp(kl.mean()))
