"""Packed datasets on disk: uint8 .npy shards, labels and dataset.json, read through memory maps and verified."""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganforge.data.mnist import cache_dir
from ganforge.errors import DataError

log = logging.getLogger(__name__)

FORMAT = "ganforge-packed"
VERSION = 1
META_FILE = "dataset.json"
LABELS_FILE = "labels.npy"
HEADER_BYTES = 128  # every shard's .npy header is padded to this, so a shard's size is HEADER_BYTES + count * image
DROP_EVERY_BYTES = 256 << 20  # mapped pages are let go before they could reach this: the page cache keeps them
FAULT_MAPS_BYTES = 2 << 20  # what one page fault may map in beside the image (a large folio of the page cache)
HASH_BLOCK = 16 << 20


def shard_name(k: int) -> str:
    return f"images-{k:05d}.npy"


def npy_header(shape: tuple[int, ...], dtype: str = "|u1") -> bytes:
    """A .npy version 1.0 header for a C-ordered array, padded with spaces to HEADER_BYTES."""
    text = f"{{'descr': '{dtype}', 'fortran_order': False, 'shape': {shape!r}, }}"
    body = text.encode("latin1")
    room = HEADER_BYTES - 10 - len(body) - 1
    if room < 0:
        raise ValueError(f"shape {shape} does not fit a {HEADER_BYTES}-byte .npy header")
    header = body + b" " * room + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


class ShardedImages:
    """(N, C, H, W) uint8 images in memory-mapped shards, read lazily: indexing copies only the images asked for.

    Enough of a tensor's interface for the data's users: shape, dtype, len, iteration, [int | slice | indices]
    and index_select(0, indices), each returning a uint8 torch.Tensor. Every shard is an np.memmap, advised
    MADV_RANDOM (no read-ahead), seen by torch as a tensor over the same pages (no copy), so a batch is gathered by
    torch's index_select as from memory; the pages read stay in the page cache, and in a set larger than
    DROP_EVERY_BYTES they are unmapped from this process (MADV_DONTNEED) before they could add up to that in its
    resident set.
    """

    def __init__(self, shards: list[np.memmap]) -> None:
        self.shards = shards
        counts = [len(s) for s in shards]
        self.starts = torch.tensor(np.cumsum([0, *counts]), dtype=torch.int64)
        self.shape = torch.Size((int(self.starts[-1]), *shards[0].shape[1:]))
        self.dtype = torch.uint8
        self.image_bytes = int(np.prod(self.shape[1:]))
        self._since_drop = 0  # images read since the pages were last let go
        self.total_bytes = sum(s.nbytes for s in shards)
        self.tensors = [_mapped_tensor(shard) for shard in shards]
        for shard in shards:  # batches read scattered images: no read-ahead, which would map in whole megabytes
            _advise(shard, "MADV_RANDOM")

    def __len__(self) -> int:
        return int(self.shape[0])

    def numel(self) -> int:
        return int(np.prod(self.shape))

    def __iter__(self) -> Iterator[torch.Tensor]:
        for k in range(len(self)):
            yield self[k]

    def __getitem__(self, index: int | slice | torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        if isinstance(index, int):
            return self.take(torch.tensor([index]))[0]
        if isinstance(index, slice):
            return self.take(torch.arange(len(self))[index])
        return self.take(index)

    def index_select(self, dim: int, index: torch.Tensor) -> torch.Tensor:
        if dim != 0:
            raise ValueError("packed images are indexed along dim 0 only")
        return self.take(index)

    def take(self, index: torch.Tensor | np.ndarray | list[int]) -> torch.Tensor:
        """Images at `index` (any order, repeats allowed) as a new (len(index), C, H, W) uint8 tensor."""
        index = torch.as_tensor(index, dtype=torch.int64, device="cpu").reshape(-1).contiguous()
        n = len(self)
        if len(index):
            low, high = torch.aminmax(index)
            if low < -n or high >= n:
                raise IndexError(f"index out of range for {n} images")
            if low < 0:
                index = index % n
        if len(self.tensors) == 1:
            out = self.tensors[0].index_select(0, index)  # copies the images out of the map
        else:
            out = torch.empty((len(index), *self.shape[1:]), dtype=torch.uint8)
            shard_of = torch.searchsorted(self.starts, index, right=True) - 1
            for k in torch.unique(shard_of).tolist():
                where = torch.nonzero(shard_of == k).squeeze(1)
                out[where] = self.tensors[k].index_select(0, index[where] - self.starts[k])
        # A set smaller than DROP_EVERY_BYTES cannot map in more; a larger one lets its pages go once the images read
        # since the last time could have mapped that much (the kernel maps whole folios on a fault, not just 4 KiB).
        self._since_drop += len(index)
        if self.total_bytes > DROP_EVERY_BYTES and self._since_drop * (self.image_bytes + FAULT_MAPS_BYTES) >= (
            DROP_EVERY_BYTES
        ):
            self.drop_pages()
        return out

    def drop_pages(self) -> None:
        """Unmap the pages read so far from this process (they stay in the page cache for the next read)."""
        self._since_drop = 0
        for shard in self.shards:
            _advise(shard, "MADV_DONTNEED")

    def to_tensor(self) -> torch.Tensor:
        """All images in memory (for small sets and for code that needs one tensor)."""
        return self.take(torch.arange(len(self)))


def _mapped_tensor(shard: np.memmap) -> torch.Tensor:
    """A uint8 tensor over a read-only map's pages: no copy; only ever read (index_select), never written."""
    with warnings.catch_warnings():  # torch warns that the array is not writable: this tensor is never written to
        warnings.simplefilter("ignore", UserWarning)
        return torch.from_numpy(shard.view(np.ndarray))


def _advise(shard: np.memmap, advice: str) -> None:
    """madvise() a shard's whole map, where the platform has that advice (Linux, macOS)."""
    mapped = getattr(shard, "_mmap", None)
    if isinstance(mapped, mmap.mmap) and hasattr(mmap, advice) and hasattr(mapped, "madvise"):
        mapped.madvise(getattr(mmap, advice))


@dataclass
class Packed:
    """An opened packed dataset: its images, labels and the metadata of dataset.json."""

    root: Path
    meta: dict[str, Any]
    images: ShardedImages
    labels: torch.Tensor | None

    @property
    def digest(self) -> str:
        return str(self.meta["digest"])


def is_packed(path: str | Path) -> bool:
    """Whether path is a folder holding a ganforge dataset.json."""
    meta = Path(path).expanduser() / META_FILE
    if not meta.is_file():
        return False
    try:
        return json.loads(meta.read_text()).get("format") == FORMAT
    except (OSError, ValueError):
        return False


def read_meta(root: Path) -> dict[str, Any]:
    path = root / META_FILE
    if not path.is_file():
        raise DataError(
            f"{root} is not a packed dataset (no {META_FILE}); make one with `ganforge data pack SRC --out {root}`"
        )
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise DataError(f"{path} is not valid JSON ({e}); pack the data again") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise DataError(f"{path} is not a ganforge packed dataset (format {FORMAT!r}); pack the data again")
    if meta.get("version") != VERSION:
        raise DataError(
            f"{path} is packed format version {meta.get('version')}, this ganforge reads {VERSION}; pack again"
        )
    return meta


def open_packed(path: str | Path, *, verify: bool = True) -> Packed:
    """Open a packed dataset: sizes checked against dataset.json (a truncated pack is refused), the content
    digest checked once per change of its files, images memory-mapped, labels read."""
    root = Path(path).expanduser()
    meta = read_meta(root)
    shape = tuple(int(v) for v in meta["shape"])
    image_bytes = int(np.prod(shape))
    # 1. Every file is there and as long as dataset.json says: a truncated copy fails here, by name.
    files = [root / s["file"] for s in meta["shards"]]
    expected = [HEADER_BYTES + int(s["count"]) * image_bytes for s in meta["shards"]]
    if meta.get("labels"):
        files.append(root / LABELS_FILE)
        expected.append(HEADER_BYTES + int(meta["count"]) * 8)
    for file, size in zip(files, expected, strict=True):
        if not file.is_file():
            raise DataError(f"packed dataset {root} is missing {file.name}; copy it whole or pack the data again")
        actual = file.stat().st_size
        if actual != size:
            raise DataError(
                f"packed dataset {root}: {file.name} is {actual:,} bytes, dataset.json says {size:,} "
                f"({'truncated' if actual < size else 'too long'}); copy it whole or pack the data again"
            )
    if sum(int(s["count"]) for s in meta["shards"]) != int(meta["count"]):
        raise DataError(f"packed dataset {root}: its shards hold a different count than dataset.json's {meta['count']}")
    # 2. The digest, recomputed when the files changed since it last matched.
    if verify:
        check_digest(root, meta, files)
    # 3. The maps.
    shards = [np.load(file, mmap_mode="r") for file in files[: len(meta["shards"])]]
    for shard, spec in zip(shards, meta["shards"], strict=True):
        if shard.dtype != np.uint8 or tuple(shard.shape) != (int(spec["count"]), *shape):
            raise DataError(f"packed dataset {root}: {spec['file']} holds {shard.dtype} {shard.shape}; pack again")
    labels = None
    if meta.get("labels"):
        labels = torch.from_numpy(np.load(root / LABELS_FILE).astype(np.int64))
    return Packed(root, meta, ShardedImages(shards), labels)


def content_digest(files: list[Path], shape: tuple[int, ...]) -> str:
    """sha256 of the shape and of every file's data after its header (shards in order, then labels)."""
    digest = hashlib.sha256(f"{FORMAT} {VERSION} {shape};".encode())
    for file in files:
        with open(file, "rb") as f:
            f.seek(HEADER_BYTES)
            while block := f.read(HASH_BLOCK):
                digest.update(block)
    return "sha256:" + digest.hexdigest()


def check_digest(root: Path, meta: dict[str, Any], files: list[Path]) -> None:
    """Refuse a pack whose content does not hash to dataset.json's digest; a stamp in the cache skips the hash
    while the files keep their sizes, times and inodes (so a second start reads nothing)."""
    stats: list[list[Any]] = [[f.name, st.st_size, st.st_mtime_ns, st.st_ino] for f in files for st in [f.stat()]]
    stamp_path = cache_dir() / "verified" / (hashlib.sha256(str(root.resolve()).encode()).hexdigest()[:32] + ".json")
    stamp = {"digest": meta["digest"], "files": stats}
    try:
        if json.loads(stamp_path.read_text()) == stamp:
            return
    except (OSError, ValueError):
        pass
    total = sum(int(s[1]) for s in stats)
    if total > 1 << 30:
        log.info("packed:%s: checking the digest of %.1f GB once (later starts skip it while the files stay)", root,
                 total / 1e9)  # fmt: skip
    found = content_digest(files, tuple(int(v) for v in meta["shape"]))
    if found != meta["digest"]:
        raise DataError(
            f"packed dataset {root}: its content hashes to {found[:23]}..., dataset.json says "
            f"{str(meta['digest'])[:23]}...; a file was changed or damaged: pack the data again"
        )
    try:
        stamp_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = stamp_path.with_name(f".{stamp_path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(stamp))
        tmp.replace(stamp_path)
    except OSError as e:  # a read-only cache only costs the next start a re-hash
        log.debug("could not write %s: %s", stamp_path, e)
