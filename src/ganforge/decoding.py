"""Image files decoded without torch: open (any mode), centre-crop, resize, PNG-encode; the packing workers' code.

Kept free of torch so that `ganforge data pack`'s worker processes start in a fraction of a second.
"""

from __future__ import annotations

import io
import math
import os
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from PIL import Image

Item = tuple[str, ...]  # ("file", path) or ("zip", zip path, member)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
BACKGROUND = 255  # transparent pixels become white, as image viewers show them


def _to_8bit(image: Image.Image) -> Image.Image:
    """16/32-bit integer and float grey images -> "L", scaling instead of clipping."""
    array = np.asarray(image)
    if array.dtype == np.uint8:
        return image.convert("L")
    if np.issubdtype(array.dtype, np.floating):
        scale = 255.0 if float(array.max(initial=0)) <= 1.0 else 1.0
        return Image.fromarray(np.clip(array * scale, 0, 255).round().astype(np.uint8))
    wide = array.astype(np.int64)
    if wide.max(initial=0) > 255:  # 16-bit range
        wide = (np.clip(wide, 0, 65535) + 128) // 257
    return Image.fromarray(np.clip(wide, 0, 255).astype(np.uint8))


FILTERS = {
    "lanczos": Image.Resampling.LANCZOS,
    "box": Image.Resampling.BOX,
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
}
AUTO_FILTER = "auto"  # Lanczos, or box when the crop is a whole multiple of the size (box is then exact averaging)
REDUCING_GAP = 2.0  # JPEG draft mode keeps at least this many source pixels a target pixel, as Image.thumbnail does


def open_image(source: str | Path | IO[bytes], *, draft_side: int | None = None) -> Image.Image:
    """One image as "L" or "RGB": first frame, alpha over white, 16-bit and float grey scaled to 8 bits.

    draft_side: a JPEG is decoded at a reduced scale (1/2, 1/4, 1/8 in the DCT) while its short side stays at
    least REDUCING_GAP x draft_side, so the final resize still has REDUCING_GAP source pixels a target pixel.
    """
    with Image.open(source) as opened:
        if draft_side and opened.format == "JPEG" and opened.mode in ("L", "RGB"):
            short = min(opened.size)
            want = REDUCING_GAP * draft_side
            if short > want:
                scale = want / short
                opened.draft(opened.mode, (math.ceil(opened.size[0] * scale), math.ceil(opened.size[1] * scale)))
        opened.seek(0)
        opened.load()
        image: Image.Image = opened
        if image.mode == "P":
            image = image.convert("RGBA")
        if image.mode in ("LA", "La", "PA", "RGBA", "RGBa"):
            rgba = image.convert("RGBA")
            flat = Image.new("RGBA", rgba.size, (BACKGROUND,) * 3 + (255,))
            flat.alpha_composite(rgba)
            image = flat.convert("L" if image.mode in ("LA", "La") else "RGB")
        if image.mode in GREY_MODES:
            return _to_8bit(image)
        return image.convert("RGB") if image.mode != "RGB" else image  # loaded: usable after the file closes


def is_grey(array: np.ndarray) -> bool:
    """Whether (H, W) or (H, W, 3) uint8 pixels are grey: one channel, or three equal ones."""
    if array.ndim == 2 or array.shape[-1] == 1:
        return True
    return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


def fit(image: Image.Image, size: int, resize_filter: str = AUTO_FILTER) -> tuple[Image.Image, str]:
    """Crop the centre square and resize it to size x size; returns the image and the filter used ("none": as is).

    auto: box when the square's side is a whole multiple of size (each output pixel the mean of a block), else
    Lanczos. The crop box goes to resize() itself, so no intermediate copy is made.
    """
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    if side == size:
        return (image if w == h else image.crop((left, top, left + side, top + side))), "none"
    name = resize_filter
    if name == AUTO_FILTER:
        name = "box" if side % size == 0 else "lanczos"
    resized = image.resize((size, size), FILTERS[name], box=(left, top, left + side, top + side))
    return resized, name


def decode(
    source: str | Path | IO[bytes], size: int, channels: int, resize_filter: str = AUTO_FILTER
) -> tuple[np.ndarray, bool, str]:
    """A file -> ((size, size, channels) uint8, whether it was grey, the filter used). Raises on unreadable files."""
    image, used = fit(open_image(source, draft_side=size), size, resize_filter)
    array = np.asarray(image)
    grey = is_grey(array)
    if channels == 1 and array.ndim == 3:
        array = array[..., 0] if grey else np.asarray(image.convert("L"))  # ITU-R 601-2 luma, as Pillow's
    if array.ndim == 2:
        array = array[..., None]
    if channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array, grey, used


def png_bytes(array: np.ndarray) -> bytes:
    """(H, W, 1 or 3) uint8 -> an uncompressed PNG ("L" or "RGB"), as dataset_tool stores its images."""
    image = Image.fromarray(array[..., 0] if array.shape[-1] == 1 else array, "L" if array.shape[-1] == 1 else "RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="png", compress_level=0)
    return buffer.getvalue()


_zips: dict[tuple[str, int, int], zipfile.ZipFile] = {}  # this process's open zips, by path, size and time


def open_item(item: Item) -> str | IO[bytes]:
    """A file's path, or an open member of a zip (the zip stays open for the next member, until close_zips)."""
    if item[0] == "file":
        return item[1]
    stat = os.stat(item[1])
    key = (item[1], stat.st_size, stat.st_mtime_ns)  # a zip replaced at the same path is opened afresh
    archive = _zips.get(key)
    if archive is None:
        archive = _zips[key] = zipfile.ZipFile(item[1])
    return archive.open(item[2])


def close_zips() -> None:
    """Close the zips open_item opened in this process."""
    while _zips:
        _zips.popitem()[1].close()


def _item_name(item: Item) -> str:
    return Path(item[1]).name if item[0] == "file" else item[2]


def decode_chunk(task: tuple[list[Item], int, int, str, bool]) -> tuple[list[Any], list[bool], list[str], list[str]]:
    """Worker: (items, size, channels, filter, as_png) -> (arrays or PNG bytes, grey flags, filters, errors).

    An unreadable item gives None in the first list and "name (reason)" in the errors.
    """
    items, size, channels, resize_filter, as_png = task
    out: list[Any] = []
    greys: list[bool] = []
    used: list[str] = []
    errors: list[str] = []
    for item in items:
        try:
            array, grey, name = decode(open_item(item), size, channels, resize_filter)
        except Exception as e:  # a corrupt file can fail anywhere in a decoder
            out.append(None)
            errors.append(f"{_item_name(item)} ({e})")
            continue
        out.append(png_bytes(array) if as_png else array)
        greys.append(grey)
        used.append(name)
    return out, greys, used, errors
