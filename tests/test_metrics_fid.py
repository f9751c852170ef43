"""Fréchet distance: agrees with the scipy sqrtm formula, robust where that one is not."""

import numpy as np
import pytest
import scipy.linalg

from ganforge.errors import ConfigError
from ganforge.metrics import frechet_distance
from ganforge.metrics.fid import feature_stats, frechet_from_stats


def scipy_frechet(a, b):
    """The reference formula (TTUR / pytorch-fid), on well-conditioned inputs."""
    mu1, s1 = a.mean(0), np.cov(a, rowvar=False)
    mu2, s2 = b.mean(0), np.cov(b, rowvar=False)
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real
    return float(((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


@pytest.mark.parametrize("dim", [2, 16, 64])
def test_matches_scipy_sqrtm_on_well_conditioned_data(dim):
    rng = np.random.default_rng(dim)
    a = rng.standard_normal((2000, dim)) @ rng.standard_normal((dim, dim)) * 0.5
    b = rng.standard_normal((1500, dim)) @ rng.standard_normal((dim, dim)) * 0.7 + 0.3
    expected = scipy_frechet(a, b)
    assert frechet_distance(a, b) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_score_zero_and_order_does_not_matter():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((500, 8)), rng.standard_normal((400, 8)) + 1
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-8)
    assert frechet_distance(a, b) == pytest.approx(frechet_distance(b, a), rel=1e-9)


def test_near_singular_covariances_give_a_finite_real_value():
    rng = np.random.default_rng(1)
    # 64 features that live in a 3-dimensional subspace, plus dead (constant) features.
    basis = rng.standard_normal((3, 64))
    a = rng.standard_normal((300, 3)) @ basis
    b = rng.standard_normal((300, 3)) @ basis * 1.1
    a[:, :10] = 0.0
    b[:, :10] = 0.0
    value = frechet_distance(a, b)
    assert np.isfinite(value) and value >= 0
    # Fewer samples than dimensions: rank-deficient covariance, still well defined.
    value = frechet_distance(rng.standard_normal((20, 64)), rng.standard_normal((20, 64)))
    assert np.isfinite(value) and value > 0


def test_exact_value_for_known_gaussians():
    # N(0, I) vs N(m, 4I) in d dims: |m|^2 + d (1 + 4 - 2 * 2) = |m|^2 + d.
    d = 5
    mu_b = np.full(d, 0.5)
    value = frechet_from_stats(np.zeros(d), np.eye(d), mu_b, 4 * np.eye(d))
    assert value == pytest.approx(0.25 * d + d, rel=1e-12)


def test_bad_inputs_are_clear_errors():
    with pytest.raises(ConfigError, match="at least 2"):
        feature_stats(np.zeros((1, 4)))
    with pytest.raises(ConfigError, match="differ in size"):
        frechet_from_stats(np.zeros(3), np.eye(3), np.zeros(4), np.eye(4))
