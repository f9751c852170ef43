"""Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991), k = 3 as in the paper.

Each set's manifold is the union of balls around its points, of radius the distance to the k-th
nearest neighbour within the set. Precision: the share of generated samples inside the real
manifold (fidelity). Recall: the share of real samples inside the generated manifold (diversity).
Matches the paper's code (stylegan2-ada `precision_recall.py`: `<=`, radii skipping the point itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.knn import as_tensor, check_count, knn_radii, scan, squared

K = 3


class PrecisionRecall:
    """Accumulates precision and recall over chunks of squared (fake, real) distances."""

    def __init__(self, real_radii: Tensor, fake_radii: Tensor) -> None:
        self.real_r2, self.fake_r2 = squared(real_radii), squared(fake_radii)
        self.fake_in_real = torch.zeros(len(fake_radii), dtype=torch.bool)
        self.real_in_fake = torch.zeros(len(real_radii), dtype=torch.bool)

    def update(self, start: int, d2: Tensor) -> None:
        """d2: (chunk of fake, all real) squared distances."""
        rows = slice(start, start + d2.size(0))
        self.fake_in_real[rows] = (d2 <= self.real_r2[None, :]).any(1)
        self.real_in_fake |= (d2 <= self.fake_r2[rows, None]).any(0)

    def result(self) -> tuple[float, float]:
        return float(self.fake_in_real.double().mean()), float(self.real_in_fake.double().mean())


def precision_recall(
    real: np.ndarray | Tensor,
    fake: np.ndarray | Tensor,
    *,
    k: int = K,
    real_radii: Tensor | None = None,
    fake_radii: Tensor | None = None,
) -> tuple[float, float]:
    """(precision, recall) of (N, D) generated features against (M, D) real ones; radii may be cached."""
    real, fake = as_tensor(real), as_tensor(fake)
    check_count(real.size(0), k, "reference", "precision/recall")
    check_count(fake.size(0), k, "generated", "precision/recall")
    real_radii = knn_radii(real, k) if real_radii is None else real_radii
    fake_radii = knn_radii(fake, k) if fake_radii is None else fake_radii
    acc = PrecisionRecall(real_radii, fake_radii)
    scan(fake, real, [acc])
    return acc.result()
