"""Read and write IDX files (the MNIST format), gzipped or not, validating headers and lengths."""

from __future__ import annotations

import gzip
import struct
import zlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ganforge.errors import DataError
from ganforge.io import write_bytes_atomic

IMAGES_MAGIC = 2051  # unsigned byte, 3 dimensions (N, H, W)
LABELS_MAGIC = 2049  # unsigned byte, 1 dimension (N,)


def _read_bytes(path: Path) -> bytes:
    """The file's bytes, decompressed when it is gzipped (by its magic, not its name)."""
    try:
        raw = path.read_bytes()
    except OSError as e:
        raise DataError(f"cannot read {path}: {e.strerror}") from e
    if raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: truncated or corrupt gzip file ({e}); delete it and download it again") from e


def peek_magic(path: str | Path) -> int | None:
    """The IDX magic number at the start of `path` (decompressing gzip), or None when unreadable."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
            f.seek(0)
            if head == b"\x1f\x8b":
                with gzip.GzipFile(fileobj=f) as g:
                    head = g.read(4)
            else:
                head = f.read(4)
    except (OSError, EOFError, zlib.error):
        return None
    return struct.unpack(">I", head)[0] if len(head) == 4 else None


ContentCheck = Callable[[Path, bytes], None]  # (path, decompressed bytes); raises DataError to refuse the file


def read_idx(path: str | Path, *, magic: int, check: ContentCheck | None = None) -> np.ndarray:
    """Read an unsigned-byte IDX file into a uint8 array, checking its magic number and its length.

    check: called with the path and the decompressed bytes before parsing (e.g. a digest check).
    """
    path = Path(path)
    data = _read_bytes(path)
    if check is not None:
        check(path, data)
    if len(data) < 4:
        raise DataError(f"{path}: truncated: expected an IDX header, found {len(data)} bytes")
    found = struct.unpack(">I", data[:4])[0]
    if found != magic:
        kind = "images" if magic == IMAGES_MAGIC else "labels"
        raise DataError(f"{path}: not an IDX {kind} file: magic number {found}, expected {magic}")
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(data) < header:
        raise DataError(f"{path}: truncated: expected a {header}-byte header, found {len(data)} bytes")
    shape = struct.unpack(f">{ndim}I", data[4:header])
    expected = header + int(np.prod(shape, dtype=np.int64))
    if len(data) != expected:
        what = "truncated" if len(data) < expected else "too long"
        raise DataError(f"{path}: {what}: expected {expected} bytes for shape {shape}, found {len(data)}")
    return np.frombuffer(data, dtype=np.uint8, offset=header).reshape(shape)


def read_images(path: str | Path, *, check: ContentCheck | None = None) -> np.ndarray:
    """(N, H, W) uint8 from an IDX images file."""
    return read_idx(path, magic=IMAGES_MAGIC, check=check)


def read_labels(path: str | Path, *, check: ContentCheck | None = None) -> np.ndarray:
    """(N,) uint8 from an IDX labels file."""
    return read_idx(path, magic=LABELS_MAGIC, check=check)


def read_pair(
    images_path: str | Path, labels_path: str | Path | None, *, check: ContentCheck | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Images and (optionally) labels, checking that their counts agree."""
    images = read_images(images_path, check=check)
    if labels_path is None:
        return images, None
    labels = read_labels(labels_path, check=check)
    if len(labels) != len(images):
        raise DataError(
            f"{labels_path} holds {len(labels)} labels but {images_path} holds {len(images)} images; use matching files"
        )
    return images, labels


def write_idx(path: str | Path, array: np.ndarray, *, compress: bool | None = None) -> None:
    """Write a uint8 array as IDX (gzipped when the name ends in .gz, or when `compress`), atomically."""
    path = Path(path)
    array = np.ascontiguousarray(array, dtype=np.uint8)
    data = struct.pack(">I", 0x0800 + array.ndim) + struct.pack(f">{array.ndim}I", *array.shape) + array.tobytes()
    if compress if compress is not None else path.suffix == ".gz":
        data = gzip.compress(data, mtime=0)
    write_bytes_atomic(path, data)


def labels_file_for(images_path: Path, candidates: Sequence[Path]) -> Path | None:
    """The labels file that goes with an images file by MNIST naming (images->labels, idx3->idx1)."""
    name = images_path.name.removesuffix(".gz")
    wanted = name.replace("images", "labels").replace("idx3", "idx1")
    if wanted == name:
        return None
    by_name = {p.name: p for p in candidates}
    return by_name.get(wanted) or by_name.get(wanted + ".gz")
