"""2-D mixtures of Gaussians (a ring of 8, a 5x5 grid) for GAN stability work."""

from __future__ import annotations

import math

import torch

from ganforge.errors import DataError

TOY_NAMES = ("ring8", "grid25")
TOY_SIZE = 10_000


def toy_modes(name: str) -> tuple[torch.Tensor, float]:
    """The mode centers (K, 2) float32 and the per-coordinate std of toy set `name` ("ring8" or "grid25")."""
    name = name.removeprefix("toy:")
    if name == "ring8":
        angles = torch.arange(8, dtype=torch.float64) * (2 * math.pi / 8)
        centers = 2.0 * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
        return centers.float(), 0.02
    if name == "grid25":
        axis = torch.arange(-4.0, 4.0 + 1e-9, 2.0)
        xs, ys = torch.meshgrid(axis, axis, indexing="ij")
        return torch.stack([xs.flatten(), ys.flatten()], dim=1), 0.05
    raise DataError(f"unknown toy set {name!r}; use toy:ring8 or toy:grid25")


def make_toy(name: str, n: int = TOY_SIZE, *, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """n points (n, 2, 1, 1) float32 and their mode index (n,) int64, the same for the same seed."""
    centers, std = toy_modes(name)
    rng = torch.Generator().manual_seed(seed)
    labels = torch.randint(len(centers), (n,), generator=rng)
    points = centers[labels] + std * torch.randn(n, 2, generator=rng)
    return points.reshape(n, 2, 1, 1), labels
