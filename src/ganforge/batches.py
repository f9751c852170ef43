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
    batch_size images. position()/restore() save and continue the order exactly. With `shard` = (rank,
    world_size) a process gets only its slice of each global batch (rank r: images r*B/W .. (r+1)*B/W - 1),
    and a memory-mapped dataset reads only those from disk (one of at most _LOAD_MAPPED_BYTES is read whole).
    """

    def __init__(
        self, dataset: Dataset, batch_size: int, *, seed: int, device: torch.device, shard: tuple[int, int] = (0, 1)
    ) -> None:
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
        self.epoch = 0
        self.index = 0
        self._perm = self._permutation(0)

    def _permutation(self, epoch: int) -> Tensor:
        rng = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=rng)
        return perm if self.images is None else perm.to(self.images.device)

    def next(self) -> tuple[Tensor, Tensor | None]:
        """This process's part of the next batch: images (b, C, H, W) float in [-1, 1] and labels (b,) or None."""
        if self.index + self.batch_size > self.n:
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
