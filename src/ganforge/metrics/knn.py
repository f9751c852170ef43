"""Nearest-neighbour distances in chunks, for the k-NN manifold metrics (precision/recall, density/coverage)."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError

CHUNK_ROWS = 1_000  # rows of the distance matrix at a time: 1,000 x 10,000 float32 is 40 MB


def as_tensor(features: np.ndarray | Tensor) -> Tensor:
    """(N, D) features as a float32 tensor."""
    x = torch.as_tensor(features, dtype=torch.float32)
    if x.ndim != 2:
        raise ConfigError(f"features must be an (N, D) array; got shape {tuple(x.shape)}")
    return x


def check_count(n: int, k: int, what: str, metric: str) -> None:
    """k-NN radii need k neighbours besides the point itself."""
    if n < k + 1:
        raise ConfigError(f"{metric} (k={k}) needs at least {k + 1} {what} samples; got {n}")


def distance_chunks(a: Tensor, b: Tensor, *, center: Tensor | None = None) -> Iterator[tuple[int, Tensor]]:
    """Yield (start, euclidean distances (rows, len(b))) for row chunks of `a`.

    |a - b|^2 = |a|^2 + |b|^2 - 2 a.b, with both sets centered first (distances do not change, the
    cancellation in float32 does), the products in float32 and the sums in float64.
    """
    center = b.mean(0) if center is None else center
    a, b = a - center, b - center
    b_sq = b.double().square().sum(1)
    for start in range(0, a.size(0), CHUNK_ROWS):
        x = a[start : start + CHUNK_ROWS]
        d2 = x.double().square().sum(1, keepdim=True) + b_sq - 2 * (x @ b.T).double()
        yield start, d2.clamp_(min=0).sqrt_()


def knn_radii(features: np.ndarray | Tensor, k: int) -> Tensor:
    """(N,) float64 distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    x = as_tensor(features)
    check_count(x.size(0), k, "", "a k-NN radius")
    radii = torch.empty(x.size(0), dtype=torch.float64)
    for start, d in distance_chunks(x, x):
        # The point itself is at distance 0, so the k-th neighbour is the (k+1)-th smallest.
        radii[start : start + d.size(0)] = d.topk(k + 1, dim=1, largest=False).values[:, k]
    return radii
