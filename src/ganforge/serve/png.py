"""A small PNG encoder for the server: for 28x28 images it is several times faster than Pillow's.

Pillow spends ~0.3 ms in Python on every image whatever its size, and tries five row filters;
this writes the chunks directly (IHDR, tEXt/iTXt, IDAT with filter 0, IEND) and zlib releases
the GIL. Pillow (and `ganforge.images.png_text`) read the result; the tests check that.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

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
