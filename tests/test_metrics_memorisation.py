"""The memorisation check: nearest training image of each sample against the held-out images' own distances."""

import numpy as np
import pytest

from ganforge.errors import ConfigError
from ganforge.metrics.memorisation import memorisation, nearest


def _points(n, seed, scale=1.0, dim=6):
    return (np.random.default_rng(seed).standard_normal((n, dim)) * scale).astype(np.float32)


def test_nearest_is_the_brute_force_nearest_neighbour():
    queries, bank = _points(37, 0), _points(53, 1)
    distances, index = nearest(queries, bank)
    full = np.linalg.norm(queries[:, None, :].astype(np.float64) - bank[None, :, :], axis=2)
    assert np.array_equal(index, full.argmin(1))
    np.testing.assert_allclose(distances, full.min(1), rtol=1e-4, atol=1e-5)


def test_copies_of_training_images_fail_and_their_pairs_come_first():
    train, test = _points(200, 0), _points(100, 1)
    rng = np.random.default_rng(2)
    fresh = _points(90, 3)
    copies = train[[5, 17, 99]] + rng.standard_normal((3, 6)).astype(np.float32) * 1e-3
    result = memorisation(np.concatenate([fresh, copies]), train, test)
    pairs = result.closest(3)
    # The three near-copies are the three closest samples, each paired with the image it copies.
    assert sorted((i, j) for i, j, _ in pairs) == [(90, 5), (91, 17), (92, 99)]
    assert all(d < 0.01 for _, _, d in pairs) and pairs == sorted(pairs, key=lambda p: p[2])
    assert result.summary(3)["closest"][0]["distance"] == pairs[0][2]

    # A generator that outputs training images (plus faint noise) sits far nearer them than held-out data does.
    copier = memorisation(train[:100] + rng.standard_normal((100, 6)).astype(np.float32) * 1e-3, train, test)
    assert not copier.passes and copier.ratio < 0.01
    # Samples spread wider than the data land further from the training set than the held-out images do.
    spread = memorisation(_points(300, 4, scale=3.0), train, test)
    assert spread.passes and spread.ratio > 1
    summary = spread.summary()
    assert summary["n_samples"] == 300 and summary["n_test"] == 100 and summary["passes"] is True
    assert summary["sample_median"] == pytest.approx(float(np.median(spread.sample_distances)))


def test_bad_inputs_are_named():
    with pytest.raises(ConfigError, match="queries have 6 features but the bank has 4"):
        nearest(_points(3, 0), _points(3, 1, dim=4))
    with pytest.raises(ConfigError, match="got 0 samples and 5 held-out images"):
        memorisation(np.zeros((0, 6), np.float32), _points(3, 0), _points(5, 1))
