"""Kernel distance (KID: Bińkowski et al. 2018, "Demystifying MMD GANs", arXiv:1801.01401).

The unbiased estimator of the squared MMD with the cubic polynomial kernel k(x, y) = (x.y / d + 1)^3,
averaged over random subsets; its mean and standard deviation over the subsets are reported, as in
the paper's code, torch-fidelity and stylegan2-ada (100 subsets of 1,000 by default). The subsets are
drawn by torch's generator, or with `sampler="numpy"` as torch-fidelity draws them (per subset,
`RandomState(seed).choice(N, size, replace=False)` of the generated features, then of the reference
ones), so that torch-fidelity's seed picks the same subsets and the figures agree.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError

NUM_SUBSETS = 100
SUBSET_SIZE = 1_000


def mmd2_unbiased(x: Tensor, y: Tensor) -> float:
    """Unbiased MMD^2 between (m, D) and (m, D): means of k off the diagonal within sets, minus twice across.

    Kernel values and their (pairwise-summed) totals are float32: relative error ~1e-7, far below the
    spread between subsets; the totals are combined in float64.
    """
    m, d = x.shape

    def kernel_sum(a: Tensor, b: Tensor, *, off_diagonal: bool) -> Tensor:
        k = torch.addmm(torch.ones(()), a, b.T, alpha=1.0 / d).pow_(3)  # (x.y / d + 1)^3
        total = k.sum().double()
        return total - k.diagonal().sum().double() if off_diagonal else total

    within = (kernel_sum(x, x, off_diagonal=True) + kernel_sum(y, y, off_diagonal=True)) / (m * (m - 1))
    return float(within - 2 * kernel_sum(x, y, off_diagonal=False) / (m * m))


def kernel_distance(
    features_fake: np.ndarray | Tensor,
    features_real: np.ndarray | Tensor,
    *,
    num_subsets: int = NUM_SUBSETS,
    subset_size: int = SUBSET_SIZE,
    seed: int = 0,
    sampler: Literal["torch", "numpy"] = "torch",
) -> tuple[float, float]:
    """KID between two (N, D) feature sets: (mean, std) of the unbiased MMD^2 over random subsets."""
    x, y = torch.as_tensor(features_fake, dtype=torch.float32), torch.as_tensor(features_real, dtype=torch.float32)
    if subset_size < 2 or num_subsets < 1:
        raise ConfigError(f"KID needs subsets of at least 2 and at least 1 subset; got {num_subsets} of {subset_size}")
    for what, feats in (("generated", x), ("reference", y)):
        if feats.size(0) < subset_size:
            raise ConfigError(
                f"KID needs at least {subset_size} {what} samples (its subset size); got {feats.size(0)}; "
                f"use more samples or a smaller kid_subset_size"
            )
    rng = torch.Generator().manual_seed(seed)
    rng_numpy = np.random.RandomState(seed)

    def subset(n: int) -> Tensor:
        if sampler == "numpy":
            return torch.from_numpy(rng_numpy.choice(n, subset_size, replace=False))
        return torch.randperm(n, generator=rng)[:subset_size]

    values = []
    for _ in range(num_subsets):
        xs = x[subset(x.size(0))]
        ys = y[subset(y.size(0))]
        values.append(mmd2_unbiased(xs, ys))
    v = np.asarray(values)
    return float(v.mean()), float(v.std())
