"""Image tensors to PNG files: grids, single images, and provenance text chunks.

The PNG encoder writes the chunks itself (IHDR, tEXt/iTXt, IDAT with filter 0, IEND): for small
images it is several times faster than Pillow, which spends ~0.3 ms in Python on every image, and
zlib releases the GIL, so the server can encode on several threads. Pillow reads what it writes.
"""

from __future__ import annotations

import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from ganforge.io import atomic_path


def to_uint8(images: Tensor) -> np.ndarray:
    """(N, C, H, W) floats in [-1, 1] -> (N, H, W, C) uint8."""
    x = ((images.detach().float().cpu().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return x.permute(0, 2, 3, 1).numpy()


def make_grid(images: Tensor, *, nrow: int | None = None, pad: int = 2) -> np.ndarray:
    """Tile (N, C, H, W) images into one (H', W', C) uint8 array, nrow images a row (default: square)."""
    pixels = to_uint8(images)
    n, h, w, c = pixels.shape
    nrow = nrow or max(1, math.ceil(math.sqrt(n)))
    rows = math.ceil(n / nrow)
    grid = np.zeros((rows * (h + pad) + pad, nrow * (w + pad) + pad, c), dtype=np.uint8)
    for k in range(n):
        r, col = divmod(k, nrow)
        top, left = pad + r * (h + pad), pad + col * (w + pad)
        grid[top : top + h, left : left + w] = pixels[k]
    return grid


SIGNATURE = b"\x89PNG\r\n\x1a\n"
_COLOR_TYPES = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> gray, gray+alpha, RGB, RGBA


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _text_chunk(key: str, value: str) -> bytes:
    """tEXt when key and value are Latin-1, else iTXt (UTF-8, uncompressed)."""
    keyword = key.encode("latin-1")[:79]
    try:
        return _chunk(b"tEXt", keyword + b"\0" + value.encode("latin-1"))
    except UnicodeEncodeError:
        return _chunk(b"iTXt", keyword + b"\0\0\0\0\0" + value.encode("utf-8"))


def png_bytes(pixels: np.ndarray, text: dict[str, str] | None = None, *, level: int = 1) -> bytes:
    """Encode (H, W, C) uint8 pixels (C in 1..4) as PNG, with text chunks; zlib level 1 is ~40% faster than 6."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] not in _COLOR_TYPES:
        raise ValueError(f"expected (H, W, C) uint8 pixels with C in 1..4; got {pixels.dtype} {pixels.shape}")
    h, w, c = pixels.shape
    rows = np.zeros((h, 1 + w * c), dtype=np.uint8)  # a leading 0 on each row: filter type None
    rows[:, 1:] = pixels.reshape(h, w * c)
    header = struct.pack(">IIBBBBB", w, h, 8, _COLOR_TYPES[c], 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    chunks += [_text_chunk(k, v) for k, v in (text or {}).items()]
    chunks += [_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)), _chunk(b"IEND", b"")]
    return SIGNATURE + b"".join(chunks)


def save_png(pixels: np.ndarray, path: str | Path, text: dict[str, str] | None = None) -> None:
    """Write PNG atomically, with tEXt chunks (provenance) when given."""
    data = png_bytes(pixels, text)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def png_text(path: str | Path) -> dict[str, str]:
    """Read the tEXt chunks of a PNG file."""
    with Image.open(path) as im:
        im.load()
        return {str(k): str(v) for k, v in getattr(im, "text", {}).items()}
