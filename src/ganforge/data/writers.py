"""Writers of packed datasets (uint8 .npy shards, hashed as written) and of stylegan2-ada dataset zips."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.data import packed, zipdata
from ganforge.errors import DataError
from ganforge.io import atomic_path

SHARD_BYTES = 1 << 30  # images a shard: as many as fit in 1 GiB
CHUNK = 64  # images buffered before a write


class ShardWriter:
    """Writes a packed dataset: shards into a temporary folder beside `out`, hashed as they are written;
    finish(labels, meta) writes labels.npy and dataset.json and renames the folder into place, abort() removes it.
    pack() drives it; a script that makes data itself may too (bench/data_large.py)."""

    def __init__(self, out: Path, shape: tuple[int, int, int]) -> None:
        out.parent.mkdir(parents=True, exist_ok=True)
        self.out = out
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent))
        self.shape = shape
        self.per_shard = max(1, SHARD_BYTES // int(np.prod(shape)))
        self.digest = hashlib.sha256(f"{packed.FORMAT} {packed.VERSION} {shape};".encode())
        self.shards: list[dict[str, Any]] = []
        self.file: Any = None
        self.count_in_shard = 0
        self.chunk = np.empty((CHUNK, *shape), dtype=np.uint8)  # (CHUNK, C, H, W): images are copied in once
        self.buffered = 0

    def add(self, array: np.ndarray) -> None:
        """One (H, W, C) image."""
        self._open_shard()
        self.chunk[self.buffered] = array.transpose(2, 0, 1)  # the one copy: HWC -> CHW, into the write buffer
        self.buffered += 1
        self.count_in_shard += 1
        if self.buffered == CHUNK:
            self._flush()
        if self.count_in_shard == self.per_shard:
            self._close_shard()

    def add_batch(self, images: np.ndarray) -> None:
        """(n, H, W, C) images, written a shard's room at a time."""
        self._flush()
        start = 0
        while start < len(images):
            self._open_shard()
            part = images[start : start + self.per_shard - self.count_in_shard]
            data = np.ascontiguousarray(part.transpose(0, 3, 1, 2)).data.cast("B")  # (n, C, H, W), not copied again
            self.file.write(data)
            self.digest.update(data)
            self.count_in_shard += len(part)
            start += len(part)
            if self.count_in_shard == self.per_shard:
                self._close_shard()

    def _open_shard(self) -> None:
        if self.file is None:
            name = packed.shard_name(len(self.shards))
            self.file = open(self.tmp / name, "wb")  # noqa: SIM115  # closed in _close_shard
            self.file.write(b"\0" * packed.HEADER_BYTES)
            self.shards.append({"file": name, "count": 0})

    def _flush(self) -> None:
        if self.buffered:
            data = self.chunk[: self.buffered].data.cast("B")  # written and hashed in place, not copied
            self.file.write(data)
            self.digest.update(data)
            self.buffered = 0

    def _close_shard(self) -> None:
        self._flush()
        self.file.seek(0)
        self.file.write(packed.npy_header((self.count_in_shard, *self.shape)))
        self.file.close()
        self.shards[-1]["count"] = self.count_in_shard
        self.file, self.count_in_shard = None, 0

    def finish(self, labels: list[int] | None, meta: dict[str, Any]) -> str:
        if self.file is not None:
            self._close_shard()
        if labels is not None:
            data = np.asarray(labels, dtype="<i8")
            (self.tmp / packed.LABELS_FILE).write_bytes(packed.npy_header((len(data),), "<i8") + data.tobytes())
            self.digest.update(data.tobytes())
        digest = "sha256:" + self.digest.hexdigest()
        labels_file = packed.LABELS_FILE if labels is not None else None
        full = {"format": packed.FORMAT, "version": packed.VERSION, **meta, "dtype": "uint8",
                "shards": self.shards, "labels": labels_file, "digest": digest}  # fmt: skip
        (self.tmp / packed.META_FILE).write_text(json.dumps(full, indent=1))
        if self.out.is_dir():
            self.out.rmdir()  # empty (checked before packing)
        os.rename(self.tmp, self.out)
        return digest

    def abort(self) -> None:
        if self.file is not None:
            self.file.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


class ZipWriter:
    """Writes stylegan2-ada's layout into a temporary zip beside `out`, renamed into place by finish()."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.context = atomic_path(out)
        self.tmp = self.context.__enter__()
        self.archive = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)
        self.names: list[str] = []

    def add(self, png: bytes) -> None:
        name = zipdata.member_name(len(self.names))
        self.archive.writestr(name, png)
        self.names.append(name)

    def finish(self, labels: list[int] | None, meta: dict[str, Any]) -> None:
        pairs = [[n, int(v)] for n, v in zip(self.names, labels, strict=True)] if labels is not None else None
        self.archive.writestr(zipdata.META, json.dumps({"labels": pairs, "ganforge": meta}))
        self.archive.close()
        self.context.__exit__(None, None, None)

    def abort(self) -> None:
        self.archive.close()
        self.context.__exit__(DataError, DataError("aborted"), None)
