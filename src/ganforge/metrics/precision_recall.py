"""Improved precision and recall (Kynkäänniemi et al. 2019, arXiv:1904.06991), k = 3 as in the paper.

Each set's manifold is the union of balls around its points, of radius the distance to the k-th
nearest neighbour within the set. Precision: the share of generated samples inside the real
manifold (fidelity). Recall: the share of real samples inside the generated manifold (diversity).
Matches the paper's code (stylegan2-ada `precision_recall.py`: radii counting the point itself).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.knn import as_tensor, check_count, distance_chunks, knn_radii

K = 3


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
    fake_in_real = torch.zeros(fake.size(0), dtype=torch.bool)
    real_in_fake = torch.zeros(real.size(0), dtype=torch.bool)
    for start, d in distance_chunks(fake, real):  # d: (chunk of fake, all real)
        rows = slice(start, start + d.size(0))
        fake_in_real[rows] = (d <= real_radii[None, :]).any(1)
        real_in_fake |= (d <= fake_radii[rows, None]).any(0)
    return float(fake_in_real.double().mean()), float(real_in_fake.double().mean())
