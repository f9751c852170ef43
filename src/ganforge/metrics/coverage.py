"""Density and coverage (Naeem et al. 2020, "Reliable Fidelity and Diversity Metrics", arXiv:2002.09797), k = 5.

Density: how many real k-NN balls contain each generated sample, over k, averaged (1 for samples
like the real ones; above 1 where samples crowd dense real regions). Coverage: the share of real
samples whose k-NN ball contains at least one generated sample. Matches the paper's `prdc` package
(strict inequalities, radii skipping the point itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.knn import as_tensor, check_count, knn_radii, scan, squared

K = 5


class DensityCoverage:
    """Accumulates density and coverage over chunks of squared (fake, real) distances."""

    def __init__(self, real_radii: Tensor, k: int = K) -> None:
        self.k = k
        self.real_r2 = squared(real_radii)
        self.inside = 0
        self.fakes = 0
        self.nearest_fake = torch.full((len(real_radii),), float("inf"))

    def update(self, start: int, d2: Tensor) -> None:
        """d2: (chunk of fake, all real) squared distances."""
        self.inside += int((d2 < self.real_r2[None, :]).sum())
        self.fakes += d2.size(0)
        self.nearest_fake = torch.minimum(self.nearest_fake, d2.min(0).values)

    def result(self) -> tuple[float, float]:
        density = self.inside / (self.k * max(self.fakes, 1))
        coverage = float((self.nearest_fake < self.real_r2).double().mean())
        return density, coverage


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
    acc = DensityCoverage(real_radii, k)
    scan(fake, real, [acc])
    return acc.result()
