"""Image tensors to PNG files: grids, single images, and provenance text chunks."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image, PngImagePlugin
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


def to_pil(pixels: np.ndarray) -> Image.Image:
    """(H, W, C) uint8 with C in 1 or 3 -> a Pillow image."""
    return Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels)


def png_bytes(pixels: np.ndarray, text: dict[str, str] | None = None) -> bytes:
    """Encode (H, W, C) uint8 pixels as PNG with tEXt chunks."""
    info = PngImagePlugin.PngInfo()
    for key, value in (text or {}).items():
        info.add_text(key, value)
    buf = io.BytesIO()
    to_pil(pixels).save(buf, format="PNG", pnginfo=info)
    return buf.getvalue()


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
