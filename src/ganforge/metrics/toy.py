"""Mode metrics for 2-D mixtures of Gaussians, as in VEEGAN (Srivastava et al. 2017) and PacGAN (Lin et al. 2018).

VEEGAN: arXiv:1705.07761; PacGAN: arXiv:1712.04086.

A sample is of high quality when it lies within 3 standard deviations of its nearest mode center.
A mode is covered when at least `min_share` of the samples are high-quality ones nearest to it; the
papers count a mode with any high-quality sample, which a few stray points can satisfy, so the
default asks for a tenth of a uniform share (as `modes.py` does for image classes).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.modes import class_histogram, modes_covered

QUALITY_STDS = 3.0


def nearest_modes(points: Tensor | np.ndarray, centers: Tensor, std: float) -> tuple[np.ndarray, np.ndarray]:
    """(nearest mode index (N,), is high quality (N,) bool) of (N, 2) points (any (N, 2, 1, 1) is flattened)."""
    x = torch.as_tensor(points, dtype=torch.float64).reshape(len(points), -1)
    d = torch.cdist(x, torch.as_tensor(centers, dtype=torch.float64))  # (N, K)
    nearest = d.min(1)
    return nearest.indices.numpy(), (nearest.values <= QUALITY_STDS * std).numpy()


def toy_metrics(
    points: Tensor | np.ndarray, centers: Tensor, std: float, *, min_share: float | None = None
) -> dict[str, float | int]:
    """modes_covered, num_modes and high_quality (the share of samples within 3 std of a mode)."""
    nearest, good = nearest_modes(points, centers, std)
    confident = np.where(good, nearest, -1)
    return {
        "modes_covered": modes_covered(confident, len(centers), min_share=min_share),
        "num_modes": len(centers),
        "high_quality": float(good.mean()) if len(good) else 0.0,
    }


def mode_histogram(points: Tensor | np.ndarray, centers: Tensor, std: float) -> np.ndarray:
    """(K,) share of the points nearest to each mode."""
    nearest, _ = nearest_modes(points, centers, std)
    return class_histogram(nearest, len(centers))


def near_mode_histogram(points: Tensor | np.ndarray, centers: Tensor, std: float) -> np.ndarray | None:
    """(K,) share of the high-quality points (within 3 std of a mode) at each mode; None when there is none."""
    nearest, good = nearest_modes(points, centers, std)
    return class_histogram(nearest[good], len(centers)) if good.any() else None
