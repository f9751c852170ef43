"""Fréchet distance between Gaussians fitted to features (FID: Heusel et al. 2017, arXiv:1706.08500).

d^2 = |mu_a - mu_b|^2 + tr(S_a + S_b - 2 (S_a S_b)^(1/2)). The reference implementation (TTUR's
`fid.py`, also pytorch-fid) takes scipy's `sqrtm` of the non-symmetric product S_a S_b, which can
return complex noise or fail on near-singular covariances. Here the trace of the square root comes
from a symmetric eigenproblem instead: S_a S_b is similar to R S_b R with R = S_a^(1/2), which is
symmetric positive semi-definite, so tr (S_a S_b)^(1/2) = sum_i sqrt(max(lambda_i(R S_b R), 0)).
Same value on well-conditioned inputs (tested to 1e-6 relative), no imaginary parts, no retries.
"""

from __future__ import annotations

import numpy as np

from ganforge.errors import ConfigError


def feature_stats(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(mean (D,), covariance (D, D)) in float64 of (N, D) features."""
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ConfigError(f"the Fréchet distance needs at least 2 feature vectors (N, D); got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def _psd_sqrt(sigma: np.ndarray) -> np.ndarray:
    """Square root of a symmetric positive semi-definite matrix, negative round-off clipped to 0."""
    eigvals, eigvecs = np.linalg.eigh((sigma + sigma.T) / 2)
    return (eigvecs * np.sqrt(np.clip(eigvals, 0, None))) @ eigvecs.T


def trace_sqrt_product(sigma_a: np.ndarray, sigma_b: np.ndarray) -> float:
    """tr((S_a S_b)^(1/2)) for symmetric PSD S_a, S_b, via the eigenvalues of S_a^(1/2) S_b S_a^(1/2)."""
    root_a = _psd_sqrt(sigma_a)
    inner = root_a @ sigma_b @ root_a
    eigvals = np.linalg.eigvalsh((inner + inner.T) / 2)
    return float(np.sqrt(np.clip(eigvals, 0, None)).sum())


def frechet_from_stats(mu_a: np.ndarray, sigma_a: np.ndarray, mu_b: np.ndarray, sigma_b: np.ndarray) -> float:
    """The squared Fréchet distance between N(mu_a, sigma_a) and N(mu_b, sigma_b); never negative."""
    mu_a, mu_b = np.asarray(mu_a, np.float64), np.asarray(mu_b, np.float64)
    sigma_a, sigma_b = np.atleast_2d(np.asarray(sigma_a, np.float64)), np.atleast_2d(np.asarray(sigma_b, np.float64))
    if mu_a.shape != mu_b.shape or sigma_a.shape != sigma_b.shape:
        raise ConfigError(
            f"feature statistics differ in size: {mu_a.shape} vs {mu_b.shape}; use one extractor for both"
        )
    diff = mu_a - mu_b
    value = diff @ diff + np.trace(sigma_a) + np.trace(sigma_b) - 2 * trace_sqrt_product(sigma_a, sigma_b)
    return max(float(value), 0.0)


def frechet_distance(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """FID-style Fréchet distance between two (N, D) feature sets (float64 inside).

    Example:
        >>> fid = frechet_distance(extract_features(fake), extract_features(real))
    """
    return frechet_from_stats(*feature_stats(features_a), *feature_stats(features_b))
