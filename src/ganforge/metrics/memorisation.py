"""Memorisation check: are samples closer to their nearest training image than held-out real images are to theirs?

A generator that copies its training set puts samples right on top of training images. Held-out real images
(the test split, never trained on) show how close a *new* image of the same kind lands to the training set by
chance. So, in extractor features: the distance from each sample to its nearest training image, against the
distance from each test image to its nearest training image, compared on the median. A sample median above
the test median means the samples are no closer to the training set than unseen real data is (the check passes);
one below says that part of the output sits nearer the training images than new art does: look at the closest
pairs. The idea is the nearest-neighbour test used since the first GAN papers, read against a held-out baseline
as in Meehan et al. 2020 ("A non-parametric test to detect data-copying in generative models").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.metrics.knn import as_tensor, squared_distance_chunks


@dataclass(frozen=True)
class Memorisation:
    """Nearest-training-image distances of samples and of held-out images, in extractor features."""

    sample_distances: np.ndarray  # (N,) float64: each sample's distance to its nearest training image
    sample_nearest: np.ndarray  # (N,) int64: that training image's index
    test_distances: np.ndarray  # (M,) float64: each held-out image's distance to its nearest training image

    @property
    def sample_median(self) -> float:
        return float(np.median(self.sample_distances))

    @property
    def test_median(self) -> float:
        return float(np.median(self.test_distances))

    @property
    def ratio(self) -> float:
        """sample median / test median: above 1, samples sit no closer to the training set than new real images."""
        return self.sample_median / self.test_median if self.test_median > 0 else float("inf")

    @property
    def passes(self) -> bool:
        """The check of issue 26: the samples' median distance is larger than the held-out images' median."""
        return self.sample_median > self.test_median

    def closest(self, k: int = 8) -> list[tuple[int, int, float]]:
        """The k samples closest to a training image: (sample index, training index, distance), closest first."""
        order = np.argsort(self.sample_distances, kind="stable")[:k]
        return [(int(i), int(self.sample_nearest[i]), float(self.sample_distances[i])) for i in order]

    def summary(self, k: int = 8) -> dict[str, object]:
        """A JSON-ready dict: counts, medians, quartiles, the verdict and the k closest pairs."""
        return {
            "n_samples": int(self.sample_distances.size),
            "n_test": int(self.test_distances.size),
            "sample_median": self.sample_median,
            "test_median": self.test_median,
            "ratio": self.ratio,
            "passes": self.passes,
            "sample_quartiles": [float(q) for q in np.percentile(self.sample_distances, [25, 50, 75])],
            "test_quartiles": [float(q) for q in np.percentile(self.test_distances, [25, 50, 75])],
            "sample_min": float(self.sample_distances.min()),
            "test_min": float(self.test_distances.min()),
            "closest": [{"sample": i, "train": j, "distance": d} for i, j, d in self.closest(k)],
        }


def nearest(queries: np.ndarray | Tensor, bank: np.ndarray | Tensor) -> tuple[np.ndarray, np.ndarray]:
    """(distance (N,) float64, index (N,) int64) of each query's nearest row of `bank`, euclidean."""
    q, b = as_tensor(queries), as_tensor(bank)
    if q.size(1) != b.size(1):
        raise ConfigError(f"queries have {q.size(1)} features but the bank has {b.size(1)}; use one extractor")
    if b.size(0) == 0:
        raise ConfigError("the bank of training features is empty; pass at least one training image")
    distances = torch.empty(q.size(0), dtype=torch.float64)
    index = torch.empty(q.size(0), dtype=torch.int64)
    for start, d2 in squared_distance_chunks(q, b):
        best, where = d2.min(dim=1)
        distances[start : start + d2.size(0)] = best.double().sqrt()
        index[start : start + d2.size(0)] = where
    return distances.numpy(), index.numpy()


def memorisation(sample_features: np.ndarray, train_features: np.ndarray, test_features: np.ndarray) -> Memorisation:
    """Compare samples' and held-out images' distances to their nearest training image (features (N, D)).

    Example:
        >>> m = memorisation(extract_features(fake, "emoji"), extract_features(train, "emoji"),
        ...                  extract_features(test, "emoji"))
        >>> m.passes, m.sample_median, m.test_median
    """
    if len(sample_features) == 0 or len(test_features) == 0:
        raise ConfigError(
            f"the memorisation check needs samples and held-out images; got {len(sample_features)} samples and "
            f"{len(test_features)} held-out images"
        )
    sample_distances, sample_nearest = nearest(sample_features, train_features)
    test_distances, _ = nearest(test_features, train_features)
    return Memorisation(sample_distances, sample_nearest, test_distances)
