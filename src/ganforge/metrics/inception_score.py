"""Inception Score (Salimans et al. 2016, "Improved Techniques for Training GANs", arXiv:1606.03498).

IS = exp(E_x KL(p(y|x) || p(y))) on the FID Inception network's 1,008 classes, computed on splits of the
samples and reported as the mean and standard deviation over the splits. The split convention is
torch-fidelity's (0.4.0), so the same images give the same figure: the samples are shuffled by
`numpy.random.RandomState(2020).permutation(N)`, split into 10 contiguous parts [i N / 10, (i + 1) N / 10),
and p(y) is the mean of p(y|x) within each part. The class probabilities are the softmax of the logits
without the classifier's bias, as in the paper's code.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import ConfigError

SPLITS = 10
SHUFFLE_SEED = 2020  # torch-fidelity's rng_seed


def inception_score(
    probs: np.ndarray, *, splits: int = SPLITS, shuffle_seed: int | None = SHUFFLE_SEED
) -> tuple[float, float]:
    """(mean, std) over `splits` parts of exp(mean KL(p(y|x) || p(y))); probs: (N, K), rows summing to 1.

    shuffle_seed None keeps the given order.
    """
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] < splits or splits < 1:
        raise ConfigError(
            f"the Inception Score needs (N, K) class probabilities with N >= splits ({splits}); got shape {p.shape}"
        )
    n = p.shape[0]
    if shuffle_seed is not None:
        p = p[np.random.RandomState(shuffle_seed).permutation(n)]
    scores = []
    for i in range(splits):
        part = p[i * n // splits : (i + 1) * n // splits]
        marginal = np.broadcast_to(part.mean(axis=0, keepdims=True), part.shape)
        # p (log p - log p(y)) only where p > 0 (its limit is 0 there; then p(y) may be 0 too, and 0 * -inf is nan).
        present = part > 0
        log_ratio = np.log(part, where=present, out=np.zeros_like(part))
        # p(y) underflows to 0 where every p is a subnormal; such terms are ~1e-300, so the floor changes nothing.
        log_ratio -= np.log(np.maximum(marginal, np.finfo(np.float64).tiny), where=present, out=np.zeros_like(part))
        kl = (part * log_ratio).sum(axis=1)
        scores.append(float(np.exp(kl.mean())))
    return float(np.mean(scores)), float(np.std(scores))
