"""The Dataset: images (in memory, or memory-mapped from a pack) with labels, class names and provenance."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

import torch

from ganforge.data.packed import ShardedImages


@dataclass(eq=False)
class Dataset:
    """A data set: images (N, C, H, W) uint8 (float32 (N, 2, 1, 1) for toy sets) and labels.

    images is one tensor in memory, or for a packed set (packed:, folder:, zip:) a ShardedImages that reads
    from memory-mapped shards only the images indexed; take() and in_memory() serve both.
    """

    spec: str
    name: str
    images: torch.Tensor | ShardedImages
    labels: torch.Tensor | None
    num_classes: int
    split: str
    source: str
    class_names: tuple[str, ...] = ()  # label k is class_names[k], where known
    resize_filter: str | None = None  # the filter that resized the images, where they were resized (packed sets)
    digest: str | None = None  # a packed set's content digest (dataset.json), which content_hash() then uses
    identity: dict[str, str] = field(default_factory=dict)  # what the content was made from (emoji: font, sha256s)
    _hash: str | None = field(default=None, init=False, repr=False)

    def __len__(self) -> int:
        return int(self.images.shape[0])

    @property
    def is_mapped(self) -> bool:
        """Whether the images stay on disk (memory-mapped) rather than in this process's memory."""
        return isinstance(self.images, ShardedImages)

    def take(self, index: torch.Tensor) -> torch.Tensor:
        """The images at `index` (N,) as a tensor; a mapped set reads only those."""
        if isinstance(self.images, ShardedImages):
            return self.images.index_select(0, index)
        return self.images.index_select(0, index.to(self.images.device))

    def in_memory(self) -> torch.Tensor:
        """Every image as one tensor (a mapped set is read whole: for small sets only)."""
        return self.images.to_tensor() if isinstance(self.images, ShardedImages) else self.images

    def class_counts(self, num_classes: int) -> list[int] | None:
        """Images of each class 0..num_classes-1 (the training data's class mix); None without labels or any count."""
        if self.labels is None or not len(self.labels):
            return None
        counts = torch.bincount(self.labels.long().reshape(-1), minlength=num_classes)[:num_classes]
        return [int(c) for c in counts] if int(counts.sum()) > 0 else None

    def content_hash(self) -> str:
        """sha256 hex of the shape, dtype and bytes of the images and labels (a packed set's digest); computed once."""
        if self._hash is None and self.digest is not None:
            self._hash = hashlib.sha256(self.digest.encode()).hexdigest()
        if self._hash is None:
            digest = hashlib.sha256()
            for tensor in (self.images, self.labels):
                if tensor is not None:
                    digest.update(f"{tuple(tensor.shape)} {tensor.dtype};".encode())
                    data = tensor.to_tensor() if isinstance(tensor, ShardedImages) else tensor
                    digest.update(data.detach().cpu().contiguous().numpy().tobytes())
            self._hash = digest.hexdigest()
        return self._hash
