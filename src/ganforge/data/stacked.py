"""Stacked MNIST: three MNIST digits as the R, G and B channels of one image, so 1,000 classes (VEEGAN, PacGAN)."""

from __future__ import annotations

import torch
from torch import Tensor

from ganforge.errors import DataError

SPEC = "stacked-mnist"
NUM_CLASSES = 1000
# Images per split. 50,000 training images as in the VEEGAN/PacGAN experiments (which drew 128,000 from the
# 60,000 MNIST digits); 10,000 test images, the reference count that every other data set is scored against.
COUNTS = {"train": 50_000, "test": 10_000}
# Fixed per split, never the run's seed: the set is the same on every machine and every call.
SEEDS = {"train": 1_000, "test": 1_001}
PLACE_VALUES = (100, 10, 1)  # label = 100 * digit_R + 10 * digit_G + digit_B
CLASS_NAMES = tuple(f"{r}-{g}-{b}" for r in range(10) for g in range(10) for b in range(10))


def triple_labels(digits: Tensor) -> Tensor:
    """(N, 3) digits (R, G, B) -> (N,) int64 labels 100 * R + 10 * G + B."""
    return (digits.long() * torch.tensor(PLACE_VALUES)).sum(1)


def stack_digits(images: Tensor, labels: Tensor, count: int, *, seed: int) -> tuple[Tensor, Tensor, Tensor]:
    """Stack `count` images of (N, 1, H, W) or (N, H, W) uint8 digits, each channel drawn uniformly with replacement.

    Returns (images (count, 3, H, W) uint8, labels (count,) int64, picks (count, 3): the source index of each
    channel's digit). The same digits, count and seed give the same bytes on every machine (torch's CPU
    generator).
    """
    digits = images.squeeze(1) if images.ndim == 4 else images
    if digits.ndim != 3 or digits.dtype != torch.uint8:
        raise DataError(f"stacking needs (N, H, W) uint8 grey digits; got {tuple(images.shape)} {images.dtype}")
    if len(digits) == 0 or len(labels) != len(digits):
        raise DataError(f"stacking needs digits with one label each; got {len(digits)} images, {len(labels)} labels")
    if labels.min() < 0 or labels.max() > 9:
        raise DataError(f"stacking needs digit labels 0-9; got labels from {int(labels.min())} to {int(labels.max())}")
    rng = torch.Generator().manual_seed(seed)
    picks = torch.randint(len(digits), (count, 3), generator=rng)  # (count, 3): R, G, B
    return digits[picks].contiguous(), triple_labels(labels[picks]), picks
