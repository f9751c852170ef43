"""Reference statistics, computed once and cached under $GANFORGE_HOME/metrics-cache as hash-checked safetensors.

The key covers everything the numbers depend on: the data set's content hash, split and count, the
extractor's sha256, the k of the k-NN radii and this file's format version. A file that fails to
parse, or whose tensors do not match the sha256 in its header, is logged, recomputed and replaced.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ganforge.data import cache_dir
from ganforge.errors import GanforgeError
from ganforge.io import atomic_path
from ganforge.metrics.coverage import K as K_DC
from ganforge.metrics.fid import feature_stats
from ganforge.metrics.knn import knn_radii
from ganforge.metrics.precision_recall import K as K_PR

log = logging.getLogger(__name__)

CACHE_FORMAT = "ganforge.reference-stats.v1"
TENSORS = ("features", "mu", "sigma", "radii_pr", "radii_dc", "class_hist")


@dataclass
class ReferenceStats:
    """What every metric needs of the reference set: features, their Gaussian, k-NN radii, class mix."""

    features: np.ndarray  # (M, D) float32
    mu: np.ndarray  # (D,) float64
    sigma: np.ndarray  # (D, D) float64
    radii_pr: torch.Tensor  # (M,) float64, k = 3 (precision/recall)
    radii_dc: torch.Tensor  # (M,) float64, k = 5 (density/coverage)
    class_hist: np.ndarray  # (K,) float64 share of each predicted class


def metrics_cache_dir() -> Path:
    return cache_dir() / "metrics-cache"


def cache_key(*, content_hash: str, split: str, count: int, extractor_sha256: str) -> str:
    """sha256 hex naming one reference: data, split, count, extractor and format."""
    fields = {
        "format": CACHE_FORMAT,
        "content_hash": content_hash,
        "split": split,
        "count": count,
        "extractor_sha256": extractor_sha256,
        "k": [K_PR, K_DC],
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()


def compute_stats(features: np.ndarray, probs_hist: np.ndarray) -> ReferenceStats:
    """Gaussian fit and k-NN radii of (M, D) reference features; probs_hist is the (K,) class histogram."""
    mu, sigma = feature_stats(features)
    radii_pr, radii_dc = knn_radii(features, K_PR), knn_radii(features, K_DC)
    return ReferenceStats(features.astype(np.float32), mu, sigma, radii_pr, radii_dc, probs_hist.astype(np.float64))


def _tensors(stats: ReferenceStats) -> dict[str, torch.Tensor]:
    return {name: torch.as_tensor(getattr(stats, name)).contiguous() for name in TENSORS}


def _payload_sha256(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in TENSORS:
        t = tensors[name]
        digest.update(f"{name} {tuple(t.shape)} {t.dtype};".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()


def save_stats(path: Path, stats: ReferenceStats, key: str, description: dict[str, str]) -> None:
    """Write the stats atomically, with the key and the sha256 of their tensors in the header."""
    tensors = _tensors(stats)
    metadata = {"format": CACHE_FORMAT, "key": key, "payload_sha256": _payload_sha256(tensors), **description}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)


def load_stats(path: Path, key: str) -> ReferenceStats | None:
    """The cached stats at path, or None when missing, for another key, unreadable or corrupt (logged)."""
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in TENSORS}
    except (SafetensorError, OSError, ValueError, KeyError) as e:
        log.warning("reference cache %s is unreadable (%s); recomputing it", path, e)
        return None
    if metadata.get("format") != CACHE_FORMAT or metadata.get("key") != key:
        log.warning("reference cache %s belongs to another reference; recomputing it", path)
        return None
    if metadata.get("payload_sha256") != _payload_sha256(tensors):
        log.warning("reference cache %s is corrupt (its sha256 does not match); recomputing it", path)
        return None
    return ReferenceStats(
        features=tensors["features"].numpy(),
        mu=tensors["mu"].numpy(),
        sigma=tensors["sigma"].numpy(),
        radii_pr=tensors["radii_pr"],
        radii_dc=tensors["radii_dc"],
        class_hist=tensors["class_hist"].numpy(),
    )


def cached_reference_stats(
    *,
    name: str,
    split: str,
    count: int,
    content_hash: str,
    extractor_sha256: str,
    compute: Callable[[], ReferenceStats],
) -> ReferenceStats:
    """Load the reference stats from the cache, or compute and cache them (a cache that can't be written is logged)."""
    key = cache_key(content_hash=content_hash, split=split, count=count, extractor_sha256=extractor_sha256)
    safe_name = "".join(ch if ch.isalnum() or ch in "-_" else "_" for ch in name)[:40]
    path = metrics_cache_dir() / f"{safe_name}-{split}-{count}-{key[:16]}.safetensors"
    stats = load_stats(path, key)
    if stats is not None:
        log.debug("reference stats from %s", path)
        return stats
    log.info("computing reference statistics for %s (%s, %d images); cached in %s", name, split, count, path)
    stats = compute()
    description = {"name": name, "split": split, "count": str(count), "extractor_sha256": extractor_sha256}
    try:
        save_stats(path, stats, key, description)
    except (GanforgeError, OSError) as e:  # a read-only home still evaluates, just without the cache
        log.warning("could not cache reference statistics: %s", e)
    return stats


def cached_arrays(
    name: str, fields: dict[str, object], compute: Callable[[], dict[str, np.ndarray]]
) -> dict[str, np.ndarray]:
    """Small named arrays (a training probe's reference figures, say) cached like the reference stats.

    fields: everything the arrays depend on (data content hash, extractor sha256, seed, count, ...), JSON-able;
    they make the key. A missing, foreign or corrupt file is recomputed; a cache that can't be written is logged.
    """
    key = hashlib.sha256(json.dumps({"format": ARRAYS_FORMAT, **fields}, sort_keys=True).encode()).hexdigest()
    path = metrics_cache_dir() / f"{name}-{key[:16]}.safetensors"
    if path.is_file():
        try:
            with safe_open(str(path), framework="pt") as f:
                metadata = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
            if metadata.get("key") == key and metadata.get("payload_sha256") == _arrays_sha256(tensors):
                return {k: v.numpy() for k, v in tensors.items()}
            log.warning("cache %s is stale or corrupt; recomputing it", path)
        except (SafetensorError, OSError, ValueError) as e:
            log.warning("cache %s is unreadable (%s); recomputing it", path, e)
    arrays = compute()
    tensors = {k: torch.as_tensor(np.ascontiguousarray(v)) for k, v in arrays.items()}
    try:
        with atomic_path(path) as tmp:
            save_file(tensors, str(tmp), metadata={"key": key, "payload_sha256": _arrays_sha256(tensors)})
    except (GanforgeError, OSError) as e:
        log.warning("could not cache %s: %s", name, e)
    return arrays


ARRAYS_FORMAT = "ganforge.cached-arrays.v1"


def _arrays_sha256(tensors: dict[str, torch.Tensor]) -> str:
    digest = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        digest.update(f"{name} {tuple(t.shape)} {t.dtype};".encode())
        digest.update(t.numpy().tobytes())
    return digest.hexdigest()
