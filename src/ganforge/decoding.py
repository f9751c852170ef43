"""Image files decoded without torch: open (any mode), centre-crop, resize, PNG-encode; the packing workers' code.

Kept free of torch so that `ganforge data pack`'s worker processes start in a fraction of a second.
"""

from __future__ import annotations

import io
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
# Changes whenever a decoding path changes pixels (2: JPEGs decoded at a DCT scale, then reduce()): the folder cache
# keys its packs by it, so a pack made by another decoder is made again rather than mixed with new ones.
DECODER = 2


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
REDUCING_GAP = 2.0  # before a non-box filter, at least this many source pixels stay a target pixel (Image.thumbnail's)
DRAFT_SCALES = (8, 4, 2)  # the reduced scales libjpeg decodes at, inside its inverse DCT


def filter_for(side: int, size: int, resize_filter: str = AUTO_FILTER) -> str:
    """The filter that takes a square of `side` pixels to `size`: "none" when equal; auto is box when side is a
    whole multiple of size (each output pixel then the mean of its block), else Lanczos."""
    if side == size:
        return "none"
    if resize_filter == AUTO_FILTER:
        return "box" if side % size == 0 else "lanczos"
    return resize_filter


def draft_scale(side: int, size: int, name: str) -> int:
    """The JPEG decode scale (1/1, 1/2, 1/4, 1/8) for a square of `side` pixels going to `size` by filter `name`.

    Box with a whole factor k: the largest scale dividing k (the DCT scaling then averages within the blocks the
    box averages). Otherwise the largest that keeps REDUCING_GAP x size pixels, so the exact filter does the rest.
    """
    if name == "none" or side <= size:
        return 1
    if name == "box" and side % size == 0:
        return next((s for s in DRAFT_SCALES if (side // size) % s == 0), 1)
    return next((s for s in DRAFT_SCALES if side >= REDUCING_GAP * size * s), 1)


def _load(opened: Image.Image, scale: int) -> tuple[Image.Image, int]:
    """Decode an opened image (a JPEG at 1/scale where it can be) as "L" or "RGB"; returns it and the scale used.

    First frame, alpha over white, 16-bit and float grey scaled to 8 bits.
    """
    used = 1
    if scale > 1 and opened.format == "JPEG" and opened.mode in ("L", "RGB"):
        w, h = opened.size
        drafted = opened.draft(opened.mode, (w // scale, h // scale))  # Pillow's pick: the largest scale allowed
        used = round(w / drafted[1][2]) if drafted is not None else 1  # its box: (0, 0, w / scale, h / scale)
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
        return _to_8bit(image), used
    return (image.convert("RGB") if image.mode != "RGB" else image), used  # loaded: usable after the file closes


def open_image(source: str | Path | IO[bytes], *, draft_side: int | None = None) -> Image.Image:
    """One image as "L" or "RGB": first frame, alpha over white, 16-bit and float grey scaled to 8 bits.

    draft_side: a JPEG is decoded at a reduced scale (1/2, 1/4, 1/8 in the DCT) while its short side stays at
    least REDUCING_GAP x draft_side, so the final resize still has REDUCING_GAP source pixels a target pixel.
    """
    with Image.open(source) as opened:
        scale = draft_scale(min(opened.size), draft_side, "lanczos") if draft_side else 1
        return _load(opened, scale)[0]


def is_grey(array: np.ndarray) -> bool:
    """Whether (H, W) or (H, W, 3) uint8 pixels are grey: one channel, or three equal ones."""
    if array.ndim == 2 or array.shape[-1] == 1:
        return True
    return bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())


def _resize(image: Image.Image, crop: tuple[float, float, float, float], size: int, name: str) -> Image.Image:
    """The square `crop` of image to size x size by filter `name`: a crop, an integer reduce() (box with a whole
    factor and a crop on whole pixels: exact block means), else resize() after reduce() to REDUCING_GAP x size."""
    left, top, right, bottom = crop
    side = right - left
    whole = all(float(v).is_integer() for v in crop) and float(side / size).is_integer()
    if whole and (name == "none" or side == size):
        box = (int(left), int(top), int(right), int(bottom))
        return image if box == (0, 0, *image.size) else image.crop(box)
    if whole and name == "box":
        return image.reduce(int(side // size), box=(int(left), int(top), int(right), int(bottom)))
    return image.resize((size, size), FILTERS[name], box=crop, reducing_gap=REDUCING_GAP)


def fit(image: Image.Image, size: int, resize_filter: str = AUTO_FILTER) -> tuple[Image.Image, str]:
    """Crop the centre square and resize it to size x size; returns the image and the filter used ("none": as is).

    auto: box when the square's side is a whole multiple of size (each output pixel the mean of a block), else
    Lanczos. The crop box goes to the resize itself, so no intermediate copy is made.
    """
    w, h = image.size
    side = min(w, h)
    left, top = (w - side) // 2, (h - side) // 2
    name = filter_for(side, size, resize_filter)
    return _resize(image, (left, top, left + side, top + side), size, name), name


def decode(
    source: str | Path | IO[bytes], size: int, channels: int, resize_filter: str = AUTO_FILTER
) -> tuple[np.ndarray, bool, str]:
    """A file -> ((size, size, channels) uint8, whether it was grey, the filter used). Raises on unreadable files.

    The filter is chosen on the file's own centre square; a JPEG is decoded at the reduced scale draft_scale()
    picks, and the crop is taken in the reduced image's pixels. Colour is converted after the reduction.
    """
    with Image.open(source) as opened:
        w, h = opened.size
        side = min(w, h)
        name = filter_for(side, size, resize_filter)
        image, scale = _load(opened, draft_scale(side, size, name))
    left, top = (w - side) // 2, (h - side) // 2
    crop = (left / scale, top / scale, (left + side) / scale, (top + side) / scale)
    fitted = _resize(image, crop, size, name)
    array = np.asarray(fitted)
    grey = is_grey(array)
    if channels == 1 and array.ndim == 3:
        array = array[..., 0] if grey else np.asarray(fitted.convert("L"))  # ITU-R 601-2 luma, as Pillow's
    if array.ndim == 2:
        array = array[..., None]
    if channels == 3 and array.shape[-1] == 1:
        array = np.repeat(array, 3, axis=-1)
    return array, grey, name


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
