"""Stacked MNIST mode metrics: each channel read by the digit classifier, modes and KL over the 1,000 triples.

The protocol of Srivastava et al. 2017 ("VEEGAN", arXiv:1705.07761) and Lin et al. 2018 ("PacGAN",
arXiv:1712.04086): classify the R, G and B digit of each of 26,000 samples with a pretrained MNIST
classifier; a mode is a digit triple, covered when at least one sample lands on it; KL(sample triple
histogram || uniform over 1,000) in nats. A perfect generator scores about (1000 - 1) / (2 * 26,000)
= 0.02 from sampling noise alone. Here the classifier is the shipped `mnist` extractor, the same
network that scores plain MNIST.
"""

from __future__ import annotations

import logging

import numpy as np
from torch import Tensor

from ganforge.errors import ConfigError

log = logging.getLogger(__name__)

NUM_DIGITS = 10
NUM_MODES = NUM_DIGITS**3
SAMPLES = 26_000  # the published protocol's sample count
CONFIDENCE = 0.5  # a digit is read confidently at max probability >= this (the share is reported, not filtered)


def check_images(images: Tensor, *, what: str = "the samples") -> None:
    """Refuse anything but (N, 3, H, W) images, naming `what`; log when every image is grey (three equal channels)."""
    _check_shape(images, what)
    if len(images) and bool((images[:, 0] == images[:, 1]).all()) and bool((images[:, 1] == images[:, 2]).all()):
        log.warning("%s are grey (three equal channels): every triple will read d-d-d, 10 of the 1,000 modes", what)


def _check_shape(images: Tensor, what: str) -> None:
    if images.ndim != 4 or images.shape[1] != 3:
        shape = tuple(images.shape[1:]) if images.ndim == 4 else tuple(images.shape)
        raise ConfigError(
            f"{what} have shape {shape}, but stacked-mnist is scored on 3-channel images (one digit a channel); "
            "score 1-channel images against --data mnist, or train a 3-channel generator on --data stacked-mnist"
        )


def split_channels(images: Tensor) -> Tensor:
    """(N, 3, H, W) -> (3N, 1, H, W): each channel its own grey image, R, G, B of one sample in a row."""
    _check_shape(images, "the images")
    n, _, h, w = images.shape
    return images.reshape(n * 3, 1, h, w)


def join_channels(features: np.ndarray, probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel (3N, D) features and (3N, 10) probabilities -> (N, 3D) concatenated features, (N, 3, 10)."""
    n = len(features) // 3
    return features.reshape(n, 3 * features.shape[1]), probs.reshape(n, 3, probs.shape[1])


def triples(channel_probs: np.ndarray) -> np.ndarray:
    """(N,) label 100 * R + 10 * G + B of the most likely digit in each channel of (N, 3, 10) probabilities."""
    digits = np.asarray(channel_probs).argmax(axis=2)
    return digits @ np.array([100, 10, 1])


def joint_probs(channel_probs: np.ndarray) -> np.ndarray:
    """(N, 1000) float32 probability of each triple, the channels read independently: p_R x p_G x p_B."""
    p = np.asarray(channel_probs, dtype=np.float32)
    return np.einsum("ni,nj,nk->nijk", p[:, 0], p[:, 1], p[:, 2]).reshape(len(p), NUM_MODES)


def stacked_scores(channel_probs: np.ndarray, *, confidence: float = CONFIDENCE) -> dict[str, float | int]:
    """stacked_modes (distinct triples of 1,000), stacked_kl (nats, against uniform), stacked_confident (share).

    channel_probs: (N, 3, 10) digit probabilities of the R, G and B channel of each sample.
    """
    p = np.asarray(channel_probs)
    if p.ndim != 3 or p.shape[1:] != (3, NUM_DIGITS) or len(p) == 0:
        raise ConfigError(f"stacked scores need (N, 3, 10) digit probabilities, N >= 1; got shape {p.shape}")
    counts = np.bincount(triples(p), minlength=NUM_MODES)
    q = counts / len(p)
    nonzero = q > 0
    kl = float((q[nonzero] * np.log(q[nonzero] * NUM_MODES)).sum())  # KL(q || 1/1000)
    confident = (p.max(axis=2) >= confidence).all(axis=1)
    return {
        "stacked_modes": int(nonzero.sum()),
        "stacked_kl": max(kl, 0.0),  # exactly 0 for a perfectly even histogram, not -1e-16
        "stacked_confident": float(confident.mean()),
    }
