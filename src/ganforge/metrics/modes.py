"""Mode coverage: how many classes a generator produces, and how far its class mix is from the data's.

A class (mode) is covered when at least `min_share` of the samples are confidently (probability
>= `confidence`) classified as it; by default a tenth of a uniform share (1% for 10 classes), so a
few stray samples do not count. Mode KL is KL(q || p) between the histogram q of the samples'
predicted classes and the reference set's p (as the class-histogram KL of Metz et al. 2017,
"Unrolled GANs", arXiv:1611.02163, and Lin et al. 2018, "PacGAN", arXiv:1712.04086): 0 for the
same mix, log(10/9) = 0.105 when one of 10 even classes is missing and the rest fill in.
"""

from __future__ import annotations

import numpy as np

CONFIDENCE = 0.8
EPS = 1e-10


def predicted_classes(probs: np.ndarray, *, confidence: float = 0.0) -> np.ndarray:
    """(N,) argmax class of (N, K) probabilities; -1 where the top probability is below `confidence`."""
    p = np.asarray(probs)
    classes = p.argmax(axis=1)
    return np.where(p.max(axis=1) >= confidence, classes, -1)


def class_histogram(classes: np.ndarray, num_classes: int) -> np.ndarray:
    """(K,) float64 share of each class among all entries (entries of -1 count in the total only)."""
    classes = np.asarray(classes)
    counts = np.bincount(classes[classes >= 0], minlength=num_classes)[:num_classes]
    return counts / max(len(classes), 1)


def modes_covered(confident_classes: np.ndarray, num_classes: int, *, min_share: float | None = None) -> int:
    """Number of classes holding at least `min_share` of all samples (confident ones; -1 entries never count)."""
    min_share = 0.1 / num_classes if min_share is None else min_share
    shares = class_histogram(confident_classes, num_classes)
    return int((shares >= min_share).sum()) if len(confident_classes) else 0


def read_histogram(probs: np.ndarray) -> np.ndarray:
    """(K,) share of the samples with (N, K) class probabilities read as each class (the top one, any confidence)."""
    return class_histogram(predicted_classes(probs), np.asarray(probs).shape[1])


def covered_at(probs: np.ndarray, confidence: float) -> int:
    """Classes covered by samples with (N, K) class probabilities, each read at top probability >= confidence."""
    return modes_covered(predicted_classes(probs, confidence=confidence), np.asarray(probs).shape[1])


def mode_kl(hist_fake: np.ndarray, hist_ref: np.ndarray) -> float:
    """KL(q || p) in nats of two class histograms (each normalized here; empty bins of q add nothing)."""
    q = np.asarray(hist_fake, dtype=np.float64)
    p = np.asarray(hist_ref, dtype=np.float64)
    q, p = q / max(q.sum(), EPS), p / max(p.sum(), EPS)
    nonzero = q > 0
    return float((q[nonzero] * (np.log(q[nonzero]) - np.log(p[nonzero] + EPS))).sum())
