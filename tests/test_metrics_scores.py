"""KID, precision/recall, density/coverage, classifier score and mode metrics on sets with known answers."""

import math

import numpy as np
import pytest
import torch

from ganforge.data import toy_modes
from ganforge.errors import ConfigError
from ganforge.metrics.classifier_score import classifier_score
from ganforge.metrics.coverage import density_coverage
from ganforge.metrics.kid import kernel_distance, mmd2_unbiased
from ganforge.metrics.knn import knn_radii
from ganforge.metrics.modes import (
    class_histogram,
    covered_at,
    mode_kl,
    modes_covered,
    predicted_classes,
    read_histogram,
)
from ganforge.metrics.precision_recall import precision_recall
from ganforge.metrics.toy import toy_metrics


def test_kid_is_about_zero_for_one_distribution_and_positive_for_two():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((2000, 16)), rng.standard_normal((2000, 16))
    mean, std = kernel_distance(a, b, num_subsets=20, subset_size=500)
    # Over numpy seeds 0-4: |mean| / (3 std + 1e-3) 0.03-0.13; the shifted KID 21-33x the bound below.
    assert abs(mean) < 3 * std + 1e-3
    shifted, _ = kernel_distance(a + 0.5, b, num_subsets=20, subset_size=500)
    assert shifted > 10 * max(abs(mean), std)


def test_kid_unbiased_estimator_by_hand():
    x, y = torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[1.0, 1.0], [0.0, 0.0]])
    k = lambda u, v: (float(u @ v) / 2 + 1) ** 3  # noqa: E731
    within = (k(x[0], x[1]) * 2 + k(y[0], y[1]) * 2) / 2
    across = sum(k(u, v) for u in x for v in y) / 4
    assert mmd2_unbiased(x, y) == pytest.approx(within - 2 * across, rel=1e-6)


def test_kid_names_the_minimum_sample_count():
    with pytest.raises(ConfigError, match="at least 1000 generated samples"):
        kernel_distance(np.zeros((999, 4)), np.zeros((5000, 4)))
    with pytest.raises(ConfigError, match="at least 100 reference samples"):
        kernel_distance(np.zeros((500, 4)), np.zeros((50, 4)), subset_size=100)


def test_knn_radii_skip_the_point_itself():
    x = torch.tensor([[0.0], [1.0], [3.0], [7.0]])
    assert knn_radii(x, 1).tolist() == [1.0, 1.0, 2.0, 4.0]
    assert knn_radii(x, 2).tolist() == [3.0, 2.0, 3.0, 6.0]


def test_precision_recall_on_constructed_sets():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((500, 2))
    # Samples like the data: both near 1 (the k=3 balls cover most of the other set; seeds 0-4: 0.96-0.98).
    p, r = precision_recall(real, rng.standard_normal((500, 2)))
    assert p > 0.9 and r > 0.9
    # Samples far away: precision and recall 0.
    assert precision_recall(real, rng.standard_normal((500, 2)) + 50) == (0.0, 0.0)
    # Samples on one half of the data: precision high, recall about a half (seeds 0-4: 0.50-0.58).
    half = real[real[:, 0] > 0]
    p, r = precision_recall(real, half)
    assert p == 1.0 and 0.35 < r < 0.65


def test_density_coverage_on_constructed_sets():
    rng = np.random.default_rng(1)
    real = rng.standard_normal((1000, 2))
    d, c = density_coverage(real, rng.standard_normal((1000, 2)))
    assert 0.8 < d < 1.2 and c > 0.9  # seeds 1-5: density 0.98-1.00, coverage 0.95-0.98
    # Every sample at one real point: a dense spot, most real neighbourhoods empty.
    d, c = density_coverage(real, np.repeat(real[:1], 1000, axis=0))
    assert c < 0.02  # seeds 1-5: 0.001-0.004
    d, c = density_coverage(real, rng.standard_normal((1000, 2)) + 50)
    assert d == 0.0 and c == 0.0


def test_knn_metrics_name_the_minimum():
    with pytest.raises(ConfigError, match="at least 4 generated samples"):
        precision_recall(np.zeros((10, 2)), np.zeros((3, 2)))
    with pytest.raises(ConfigError, match="at least 6 reference samples"):
        density_coverage(np.zeros((5, 2)), np.zeros((10, 2)))


def test_classifier_score_bounds():
    confident_even = np.eye(10)[np.arange(1000) % 10]
    assert classifier_score(confident_even) == pytest.approx(10, rel=1e-6)
    assert classifier_score(np.full((100, 10), 0.1)) == pytest.approx(1.0)
    one_class = np.eye(10)[np.zeros(100, dtype=int)]
    assert classifier_score(one_class) == pytest.approx(1.0)


def test_mode_metrics_dropping_a_class():
    labels = np.arange(1000) % 10
    probs = np.eye(10)[labels] * 0.95 + 0.005
    ref = class_histogram(predicted_classes(probs), 10)
    assert modes_covered(predicted_classes(probs, confidence=0.8), 10) == 10
    assert mode_kl(ref, ref) == pytest.approx(0.0, abs=1e-9)
    dropped = probs[labels != 3]
    assert modes_covered(predicted_classes(dropped, confidence=0.8), 10) == 9
    assert mode_kl(class_histogram(predicted_classes(dropped), 10), ref) == pytest.approx(math.log(10 / 9), rel=1e-6)
    # Unconfident predictions cover nothing; a few stray samples do not make a mode.
    assert modes_covered(predicted_classes(np.full((100, 10), 0.1), confidence=0.8), 10) == 0
    stray = np.concatenate([np.zeros(995, dtype=int), np.arange(1, 6)])
    assert modes_covered(stray, 10) == 1
    # The helpers the metrics call read the same: the top class at any confidence, coverage at one.
    assert np.array_equal(read_histogram(dropped), class_histogram(predicted_classes(dropped), 10))
    assert covered_at(dropped, 0.8) == 9 and covered_at(dropped, 0.99) == 0


def test_toy_metrics_on_the_ring():
    centers, std = toy_modes("ring8")
    rng = torch.Generator().manual_seed(0)
    idx = torch.arange(800) % 8
    good = centers[idx] + std * torch.randn(800, 2, generator=rng)
    m = toy_metrics(good, centers, std)
    # Within 3 std in 2-D: 1 - exp(-4.5) = 0.989 expected; seeds 0-4 gave 0.980-0.990 (0.004 sd at n=800).
    assert m["modes_covered"] == 8 and m["num_modes"] == 8 and m["high_quality"] > 0.95
    half = good[idx < 4]
    assert toy_metrics(half, centers, std)["modes_covered"] == 4
    assert toy_metrics(torch.zeros(100, 2), centers, std) == {"modes_covered": 0, "num_modes": 8, "high_quality": 0.0}
