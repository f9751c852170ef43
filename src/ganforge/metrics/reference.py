"""Which real images a data spec is scored against: the protocol's reference set."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from ganforge.data import Dataset, check_data_dir, conform, is_packed, load_dataset, to_float
from ganforge.errors import ConfigError, DataError

log = logging.getLogger(__name__)

REFERENCE_COUNT = 10_000
SPLITS = ("test", "train")  # the reference split: the held-out one (the protocol), or the training images
SUBSET_SEED = 0  # the reference subset never depends on the evaluation seed


@dataclass
class Reference:
    """The reference images (M, C, H, W) in [-1, 1] (or (M, 2, 1, 1) points), and where they came from."""

    name: str
    split: str
    images: Tensor
    content_hash: str
    source: str
    resize_filter: str | None = None  # the filter that resized the reference images (packed, folder and zip sets)
    identity: dict[str, str] = field(default_factory=dict)  # what the data was made from (emoji: font and sha256s)

    @property
    def count(self) -> int:
        return int(self.images.shape[0])

    def describe(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "split": self.split, "count": self.count}
        if self.resize_filter is not None:  # FID moves with the filter alone (stylegan2-ada-pytorch #283)
            out["resize_filter"] = self.resize_filter
        if self.identity:
            out["identity"] = dict(self.identity)
        return out


def _mnist_test(data_dir: str | Path | None) -> Dataset:
    """The MNIST test split; offline and not found, the 5,000 mnist-sample digits stand in (logged)."""
    try:
        return load_dataset("mnist", split="test", data_dir=data_dir)
    except DataError as e:
        log.warning(
            "the MNIST test split is not available (%s); scoring against mnist-sample, the 5,000 training digits, "
            "so the numbers are not comparable with the documented ones",
            e,
        )
        return load_dataset("mnist-sample", split="train")


def _stacked_test(data_dir: str | Path | None) -> Dataset:
    """stacked-mnist's test split; without the MNIST test digits, its training images stand in (logged)."""
    try:
        return load_dataset("stacked-mnist", split="test", data_dir=data_dir)
    except DataError as e:
        log.warning(
            "the MNIST test split is not available (%s); scoring against stacked-mnist's training images, so the "
            "numbers are not comparable with the documented ones",
            e,
        )
        return load_dataset("stacked-mnist", split="train", data_dir=data_dir)


def load_reference(
    data: str,
    *,
    data_dir: str | Path | None = None,
    count: int = REFERENCE_COUNT,
    image_size: int | None = None,
    channels: int | None = None,
    split: str = "test",
) -> Reference:
    """The reference set for a data spec, at most `count` images.

    mnist and mnist-sample: the MNIST test split (10,000 digits held out from all training data).
    stacked-mnist: its test split, 10,000 images stacked from the MNIST test digits.
    fashion-mnist and toy:*: their test split. emoji: its test split (367 emoji never trained on), rendered at
    image_size (default the spec's size, else 64) with `channels`.
    idx:DIR and folder:DIR have no split, so a seeded subset
    of the whole set is used (a generator trained on it has seen those images: keep a folder of
    held-out images and pass it as the data spec for a true held-out reference).
    split "train" scores against the training split instead (the images the generator learnt from), for the data
    sets that have one; the default "test" is the protocol.
    """
    if split not in SPLITS:
        raise ConfigError(f"unknown reference split {split!r}; use one of {', '.join(SPLITS)}")
    if data_dir is not None:
        check_data_dir(data_dir)  # before the mnist fallback below can swallow a mistyped folder
    kind = data.partition(":")[0]
    if split == "train":
        if kind not in ("mnist", "mnist-sample", "stacked-mnist", "fashion-mnist", "toy", "emoji"):
            raise ConfigError(
                f"{data!r} has no training split to score against (only mnist, stacked-mnist, fashion-mnist, toy:* "
                "and emoji have splits); drop the train reference split"
            )
        ds = load_dataset(data, split="train", data_dir=data_dir, image_size=image_size, channels=channels)
    elif data in ("mnist", "mnist-sample"):
        ds = _mnist_test(data_dir)
    elif data == "stacked-mnist":
        ds = _stacked_test(data_dir)
    elif data == "fashion-mnist" or kind == "toy":
        ds = load_dataset(data, split="test", data_dir=data_dir)
    elif kind == "emoji":
        ds = load_dataset(data, split="test", image_size=image_size, channels=channels)
    elif kind == "packed" or is_packed(data):  # subset first, then convert: a packed set may not fit in memory
        ds = load_dataset(data, split="all", data_dir=data_dir)
    else:
        ds = load_dataset(data, split="all", data_dir=data_dir, image_size=image_size, channels=channels)
    if len(ds) < 2:
        raise DataError(f"the reference set {data!r} has {len(ds)} images; it needs at least 2 (and more for k-NN)")
    keep = torch.arange(len(ds))
    if len(ds) > count:
        keep = torch.randperm(len(ds), generator=torch.Generator().manual_seed(SUBSET_SEED))[:count].sort().values
    images = conform(ds.take(keep), image_size=image_size, channels=channels) if ds.is_mapped else ds.images[keep]
    assert isinstance(images, Tensor)
    return Reference(
        ds.name, ds.split, to_float(images).float(), ds.content_hash(), ds.source, ds.resize_filter, ds.identity
    )
