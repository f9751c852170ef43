"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics", arXiv:2002.09797), k = 5.

Density: how many real k-NN balls contain each generated sample, over k, averaged (1 for samples
like the real ones; above 1 where samples crowd dense real regions). Coverage: the share of real
samples whose k-NN ball contains at least one generated sample. Matches the paper's `prdc` package
(strict inequalities, radii counting the point itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.knn import as_tensor, check_count, distance_chunks, knn_radii

K = 5


def density_coverage(
    real: np.ndarray | Tensor,
    fake: np.ndarray | Tensor,
    *,
    k: int = K,
    real_radii: Tensor | None = None,
) -> tuple[float, float]:
    """(density, coverage) of (N, D) generated features against (M, D) real ones; real radii may be cached."""
    real, fake = as_tensor(real), as_tensor(fake)
    check_count(real.size(0), k, "reference", "density/coverage")
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    inside = torch.zeros((), dtype=torch.float64)
    nearest_fake = torch.full((real.size(0),), float("inf"), dtype=torch.float64)
    for _, d in distance_chunks(fake, real):  # d: (chunk of fake, all real)
        inside += (d < real_radii[None, :]).sum()
        nearest_fake = torch.minimum(nearest_fake, d.min(0).values)
    density = float(inside) / (k * fake.size(0))
    coverage = float((nearest_fake < real_radii).double().mean())
    return density, coverage
