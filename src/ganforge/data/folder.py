"""Image folders (any size and mode) to one uint8 tensor, and resizing/recoloring of image tensors."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import IO, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps

from ganforge.errors import DataError

log = logging.getLogger(__name__)

EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp", ".gif")
GREY_MODES = {"1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F"}
DEFAULT_SIZE = 64
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


def open_image(path: Path | IO[bytes]) -> tuple[Image.Image, bool]:
    """One image (a path or a binary file object) as "L" or "RGB" (first frame; alpha over white), and whether grey."""
    with Image.open(path) as opened:
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
            return _to_8bit(image), True
        rgb = image.convert("RGB")
        array = np.asarray(rgb)
        is_grey = bool((array[..., 0] == array[..., 1]).all() and (array[..., 1] == array[..., 2]).all())
        return (rgb.convert("L") if is_grey else rgb), is_grey


class FolderImages(NamedTuple):
    """A folder's images (N, C, S, S) uint8, with labels (N,) int64 and class names when it has class subfolders."""

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: tuple[str, ...]


def class_folders(root: Path, paths: list[Path]) -> tuple[str, ...]:
    """Class names (sorted) when every image sits in one of at least two subfolders of root, else ().

    The usual layout, root/cat/*.png and root/dog/*.png; deeper folders belong to their top-level one.
    Images directly in root mean the subfolders are not classes.
    """
    tops = {p.relative_to(root).parts[0] for p in paths if len(p.relative_to(root).parts) > 1}
    if len(tops) < 2 or any(len(p.relative_to(root).parts) == 1 for p in paths):
        return ()
    return tuple(sorted(tops))


def find_images(root: Path) -> list[Path]:
    """Image files under root (recursively), in sorted order; hidden files and folders are skipped."""
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in EXTENSIONS
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
    )


def native_shape(root: str | Path, *, probe: int = 64) -> tuple[int, int]:
    """(channels, size) that a folder's images have: 1 when the first `probe` are all grey, else 3; the most
    common short side among them. Unreadable files are skipped here and counted by load_folder."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist; pass a folder of images, e.g. folder:./faces")
    sizes: dict[int, int] = {}
    all_grey = True
    for path in find_images(root)[:probe]:
        try:
            image, is_grey = open_image(path)
        except Exception:  # counted when the folder is loaded
            continue
        side = min(image.size)
        sizes[side] = sizes.get(side, 0) + 1
        all_grey &= is_grey
    if not sizes:
        raise DataError(f"no readable images in {root} (looked for {', '.join(EXTENSIONS)}); pass a folder of images")
    return (1 if all_grey else 3), max(sizes, key=lambda side: sizes[side])


def load_folder(root: str | Path, *, image_size: int | None = None, channels: int | None = None) -> FolderImages:
    """Every readable image under root, center-cropped and resized to image_size, as (N, C, S, S) uint8.

    channels: 1 or 3; None picks 1 when every image is grey, else 3. Unreadable files are skipped and
    counted in one warning. Class subfolders (root/cat/*, root/dog/*) give labels 0..K-1 in sorted name order.
    """
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist; pass a folder of images, e.g. folder:./faces")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 for folder:{root}; got {channels}")
    size = image_size or DEFAULT_SIZE
    paths = find_images(root)
    if not paths:
        raise DataError(f"no images in {root} (looked for {', '.join(EXTENSIONS)}); pass a folder of images")

    classes = class_folders(root, paths)
    class_index = {name: k for k, name in enumerate(classes)}

    # 1. Decode every file; unreadable ones are counted, not fatal.
    images: list[Image.Image] = []
    labels: list[int] = []
    all_grey = True
    skipped: list[str] = []
    for path in paths:
        try:
            image, is_grey = open_image(path)
        except Exception as e:  # a corrupt file can fail anywhere in a decoder
            skipped.append(f"{path.name}: {e}")
            continue
        images.append(image)
        if classes:
            labels.append(class_index[path.relative_to(root).parts[0]])
        all_grey &= is_grey
    if not images:
        raise DataError(f"none of the {len(paths)} image files in {root} could be read (e.g. {skipped[0]})")
    if skipped:
        log.warning(
            "folder:%s: skipped %d unreadable of %d image files (e.g. %s)", root, len(skipped), len(paths), skipped[0]
        )

    if channels == 1 and not all_grey:
        log.warning("folder:%s holds colour images; converting them to grey (pass --channels 3 to keep colour)", root)

    # 2. Conform: one mode, one size (scale the short side, crop the center).
    mode = "L" if (channels or (1 if all_grey else 3)) == 1 else "RGB"
    batch = np.empty((len(images), size, size, 1 if mode == "L" else 3), dtype=np.uint8)
    for k, image in enumerate(images):
        fitted = ImageOps.fit(image.convert(mode), (size, size), method=Image.Resampling.BILINEAR)
        batch[k] = np.asarray(fitted).reshape(size, size, -1)
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    if not classes:
        return FolderImages(tensor, None, ())
    log.info("folder:%s: %d classes from its subfolders (%s)", root, len(classes), ", ".join(classes))
    return FolderImages(tensor, torch.tensor(labels, dtype=torch.int64), classes)


def conform(images: torch.Tensor, *, image_size: int | None = None, channels: int | None = None) -> torch.Tensor:
    """uint8 (N, C, H, W) -> (N, channels, image_size, image_size): grey<->RGB, short-side resize, center crop.

    Resizing is bilinear with antialiasing (within 1 of Pillow's), done on the whole batch at once.
    """
    c = images.shape[1]
    if channels is not None and (channels, c) not in ((c, c), (1, 3), (3, 1)):
        raise DataError(f"cannot convert {c}-channel images to {channels} channels; use channels 1 or 3")
    # Reduce channels before resizing and expand them after: the resize then touches the fewest pixels.
    if channels == 1 and c == 3:
        # ITU-R 601-2 luma, as Pillow's convert("L")
        weights = torch.tensor([299, 587, 114], dtype=torch.int32).view(1, 3, 1, 1)
        luma = (images.to(torch.int32) * weights).sum(1, keepdim=True) + 500
        images = luma.div(1000, rounding_mode="floor").to(torch.uint8)
    if image_size is not None and images.shape[2:] != (image_size, image_size):
        images = _resize_crop(images, image_size)
    if channels == 3 and c == 1:
        images = images.expand(-1, 3, -1, -1)
    return images.contiguous()


def _resize_crop(images: torch.Tensor, size: int, chunk: int = 8192) -> torch.Tensor:
    """Scale the short side to size, crop the center; in chunks to bound the float copy's memory."""
    h, w = images.shape[2:]
    scale = size / min(h, w)
    new_h, new_w = max(size, round(h * scale)), max(size, round(w * scale))
    top, left = (new_h - size) // 2, (new_w - size) // 2
    out = torch.empty((images.shape[0], images.shape[1], size, size), dtype=torch.uint8)
    for start in range(0, len(images), chunk):
        part = images[start : start + chunk].float()
        resized = F.interpolate(part, size=(new_h, new_w), mode="bilinear", antialias=True, align_corners=False)
        out[start : start + chunk] = resized[:, :, top : top + size, left : left + size].round().clamp(0, 255)
    return out
