"""Batches by a seeded permutation an epoch, from memory or from a memory-mapped pack: no DataLoader, exact resume."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ganforge.data import Dataset, to_float

# In-memory datasets up to this size are converted to float once; larger ones convert each batch.
_FLOAT_ONCE_BYTES = 1 << 30
# Memory-mapped (packed) datasets up to this size are read into memory once and batched as in-memory ones (the
# seed preset's 5,000 digits, 3.9 MB, then step as fast from packed: as from memory); larger ones are streamed.
_LOAD_MAPPED_BYTES = 32 << 20


class Batches:
    """Draws batches of `batch_size` real images (and labels); the order depends on (seed, epoch) only.

    Every epoch is a fresh permutation; its last partial batch is dropped, so every step sees exactly
    batch_size images. With `class_balance` b > 0 (labelled data) an epoch is as long but draws each class
    in proportion to count^(1 - b) (`balanced_order`): b = 1 every class equally often, b = 0.5 by the
    square root of its count; a class's images are drawn in turn, each before any repeats.
    position()/restore() save and continue the order exactly. With `shard` = (rank,
    world_size) a process gets only its slice of each global batch (rank r: images r*B/W .. (r+1)*B/W - 1),
    and a memory-mapped dataset reads only those from disk (one of at most _LOAD_MAPPED_BYTES is read whole).
    """

    def __init__(
        self,
        dataset: Dataset,
        batch_size: int,
        *,
        seed: int,
        device: torch.device,
        shard: tuple[int, int] = (0, 1),
        class_balance: float = 0.0,
    ) -> None:
        if class_balance and dataset.labels is None:
            raise ValueError("class balance needs labelled data")
        self.batch_size = batch_size
        self.seed = seed
        self.n = len(dataset)
        rank, world = shard
        if batch_size % world:
            raise ValueError(f"a batch of {batch_size} does not split over {world} processes")
        local = batch_size // world
        self.slice = slice(rank * local, (rank + 1) * local)
        self.device = device
        self.dataset: Dataset | None = None
        self.images: Tensor | None = None
        if dataset.is_mapped and dataset.images.numel() > _LOAD_MAPPED_BYTES:
            self.dataset = dataset  # read batch by batch; the page cache keeps what was read
        else:
            images = dataset.in_memory()
            if images.dtype == torch.uint8 and images.numel() * 4 <= _FLOAT_ONCE_BYTES:
                images = to_float(images)
            self.images = images.to(device)
        self.labels = dataset.labels.to(device) if dataset.labels is not None else None
        self.class_balance = class_balance
        self._cpu_labels = dataset.labels if class_balance else None
        self.epoch = 0
        self.index = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        if self._cpu_labels is not None:
            perm = balanced_order(self._cpu_labels, self.class_balance, rng)
        else:
            perm = torch.randperm(self.n, generator=rng)
        return perm if self.images is None else perm.to(self.images.device)

    def next(self) -> tuple[Tensor, Tensor | None]:
        """This process's part of the next batch: images (b, C, H, W) float in [-1, 1] and labels (b,) or None."""
        if self.index + self.batch_size > len(self._perm):
            self.epoch += 1
            self.index = 0
            self._perm = self._permutation(self.epoch)
        idx = self._perm[self.index : self.index + self.batch_size][self.slice]
        self.index += self.batch_size
        if self.images is not None:
            real = self.images.index_select(0, idx)
        else:
            assert self.dataset is not None
            real = self.dataset.take(idx).to(self.device, non_blocking=True)
        if real.dtype == torch.uint8:
            real = to_float(real)
        labels = self.labels.index_select(0, idx.to(self.labels.device)) if self.labels is not None else None
        return real, labels

    def position(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "index": self.index, "n": self.n, "batch_size": self.batch_size}

    def restore(self, position: dict[str, Any]) -> None:
        if position["n"] != self.n:
            raise ValueError(f"the checkpoint was trained on {position['n']} images, this data has {self.n}")
        self.epoch, self.index = int(position["epoch"]), int(position["index"])
        self._perm = self._permutation(self.epoch)


def balanced_order(labels: Tensor, balance: float, rng: torch.Generator) -> Tensor:
    """An epoch's order of len(labels) indices in which class c has a share proportional to count_c^(1 - balance).

    Each class fills its quota from its own images in shuffled turns (no image repeats before all of its class
    have been drawn; a small class repeats, a large one is subsampled); the whole epoch is then shuffled.
    """
    labels = labels.cpu().long()
    counts = torch.bincount(labels).double()
    weights = torch.where(counts > 0, counts ** (1 - balance), 0.0)  # an empty class is never drawn
    quotas = torch.round(len(labels) * weights / weights.sum()).long()
    parts = []
    for c in torch.nonzero(counts).squeeze(1).tolist():
        members = torch.nonzero(labels == c).squeeze(1)
        turns = -(-int(quotas[c]) // len(members))
        shuffled = [members[torch.randperm(len(members), generator=rng)] for _ in range(turns)]
        parts.append(torch.cat(shuffled)[: int(quotas[c])] if shuffled else members[:0])
    order = torch.cat(parts)
    return order[torch.randperm(len(order), generator=rng)]
