"""Nearest-neighbour distances in chunks, for the k-NN manifold metrics (precision/recall, density/coverage)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError

CHUNK_ROWS = 1_000  # rows of the distance matrix at a time: 1,000 x 10,000 float32 is 40 MB


class ChunkConsumer(Protocol):
    def update(self, start: int, d2: Tensor) -> None: ...


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


def squared_distance_chunks(a: Tensor, b: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Yield (start, squared euclidean distances (rows, len(b)) float32) for row chunks of `a`.

    |a - b|^2 = |a|^2 + |b|^2 - 2 a.b in float32, after centering both sets on b's mean: distances do
    not change, and the cancellation that float32 suffers from large norms mostly goes away.
    """
    center = b.mean(0)
    a, b = a - center, b - center
    b_sq = b.square().sum(1)
    for start in range(0, a.size(0), CHUNK_ROWS):
        x = a[start : start + CHUNK_ROWS]
        d2 = torch.addmm(b_sq.unsqueeze(0), x, b.T, alpha=-2.0)
        yield start, d2.add_(x.square().sum(1, keepdim=True)).clamp_(min=0)


def scan(fake: Tensor, real: Tensor, consumers: Sequence[ChunkConsumer]) -> None:
    """One pass over the (fake, real) distance matrix, handing each chunk to every consumer."""
    for start, d2 in squared_distance_chunks(fake, real):
        for consumer in consumers:
            consumer.update(start, d2)


def knn_radii(features: np.ndarray | Tensor, k: int) -> Tensor:
    """(N,) float64 distance of each point to its k-th nearest neighbour in the same set (itself excluded)."""
    x = as_tensor(features)
    check_count(x.size(0), k, "", "a k-NN radius")
    radii = torch.empty(x.size(0), dtype=torch.float64)
    for start, d2 in squared_distance_chunks(x, x):
        # The point itself is at distance 0, so the k-th neighbour is the (k+1)-th smallest.
        kth = d2.topk(k + 1, dim=1, largest=False).values[:, k]
        radii[start : start + d2.size(0)] = kth.double().sqrt()
    return radii


def squared(radii: Tensor) -> Tensor:
    """Radii (float64) -> squared radii (float32), to compare with squared distance chunks."""
    return torch.as_tensor(radii, dtype=torch.float64).square().float()
