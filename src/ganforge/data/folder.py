"""Image files (any size and mode) decoded, centre-cropped and resized with Pillow; image folders; tensor resizing."""

from __future__ import annotations

import gc
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

from ganforge.decoding import (  # noqa: F401  # re-exported: the decoders were first written here
    AUTO_FILTER,
    EXTENSIONS,
    FILTERS,
    decode,
    is_grey,
    open_image,
)
from ganforge.errors import DataError

log = logging.getLogger(__name__)

DEFAULT_SIZE = 64


class FolderImages(NamedTuple):
    """A folder's images (N, C, S, S) uint8, with labels (N,) int64 and class names when it has class subfolders."""

    images: torch.Tensor
    labels: torch.Tensor | None
    class_names: tuple[str, ...]


class FolderListing(NamedTuple):
    """A folder's image files in sorted order: full paths, paths relative to the folder, (size, mtime_ns) each,
    class names (from class subfolders, else ()) and each file's label (empty without classes)."""

    files: list[str]
    names: list[str]
    stamps: list[tuple[int, int]]
    classes: tuple[str, ...]
    labels: list[int]


def class_folders(parts: list[tuple[str, ...]]) -> tuple[str, ...]:
    """Class names (sorted) when every image sits in one of at least two subfolders of root, else ().

    parts: each image's path relative to root, split. The usual layout, root/cat/*.png and root/dog/*.png;
    deeper folders belong to their top-level one. Images directly in root mean the subfolders are not classes.
    """
    tops = {p[0] for p in parts if len(p) > 1}
    if len(tops) < 2 or any(len(p) == 1 for p in parts):
        return ()
    return tuple(sorted(tops))


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause Python's cycle collector while a listing builds its many small, acyclic objects.

    In a process that has imported torch every full collection walks about a million objects; a folder of 50,000
    files triggers enough of them to double the time of its listing (measured in bench/data_speed.py --part start).
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def scan_images(root: Path) -> list[tuple[tuple[str, ...], tuple[int, int]]]:
    """(path relative to root split in parts, (size, mtime_ns)) of the image files under root, sorted as pathlib
    sorts paths.

    One scandir pass, one stat a file (a folder of 50,000 images in a fraction of a second); no file is opened.
    Hidden files and folders are skipped; linked files are followed, linked folders are not (as Path.rglob).
    """
    found: list[tuple[tuple[str, ...], tuple[int, int]]] = []

    def walk(folder: str, parts: tuple[str, ...]) -> None:
        with os.scandir(folder) as entries:
            for entry in entries:
                name = entry.name
                if name[0] == ".":
                    continue
                if entry.is_dir(follow_symlinks=False):
                    walk(entry.path, (*parts, name))
                    continue
                dot = name.rfind(".")
                if dot > 0 and name[dot:].lower() in EXTENSIONS and entry.is_file():
                    st = entry.stat()
                    found.append(((*parts, name), (st.st_size, st.st_mtime_ns)))

    walk(str(root), ())
    found.sort(key=lambda item: item[0])
    return found


def find_images(root: Path) -> list[Path]:
    """Image files under root (recursively), in sorted order; hidden files and folders are skipped."""
    return [root.joinpath(*parts) for parts, _ in scan_images(root)]


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
            image = open_image(path)
        except Exception:  # counted when the folder is loaded
            continue
        side = min(image.size)
        sizes[side] = sizes.get(side, 0) + 1
        all_grey &= is_grey(np.asarray(image))
    if not sizes:
        raise DataError(f"no readable images in {root} (looked for {', '.join(EXTENSIONS)}); pass a folder of images")
    return (1 if all_grey else 3), max(sizes, key=lambda side: sizes[side])


def unreadable_note(spec: str, skipped: list[str], total: int, *, shown: int = 5) -> str:
    """The one summary line for skipped files: "folder:D: skipped 2 unreadable of 9 image files: a.png (...), ..."."""
    more = f", and {len(skipped) - shown} more" if len(skipped) > shown else ""
    return f"{spec}: skipped {len(skipped)} unreadable of {total} image files: {', '.join(skipped[:shown])}{more}"


def load_folder(
    root: str | Path,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    resize_filter: str = AUTO_FILTER,
    grey_reason: str = "pass --channels 3 to keep colour",
) -> FolderImages:
    """Every readable image under root, center-cropped and resized to image_size, as (N, C, S, S) uint8, in memory.

    channels: 1 or 3; None picks 1 when every image is grey, else 3. Unreadable files are skipped and
    listed in one warning. Class subfolders (root/cat/*, root/dog/*) give labels 0..K-1 in sorted name order.
    (load_dataset packs a folder into the cache instead, in worker processes; this is the in-process path.)
    """
    root = Path(root).expanduser()
    listing = list_folder(root, channels)
    paths, classes, labels = listing.files, listing.classes, listing.labels
    size = image_size or DEFAULT_SIZE

    # 1. Decode every file at 3 channels (or 1), noting which were grey; unreadable ones are listed, not fatal.
    arrays: list[np.ndarray] = []
    kept: list[int] = []
    all_grey = True
    skipped: list[str] = []
    for k, path in enumerate(paths):
        try:
            array, grey, _ = decode(path, size, channels or 3, resize_filter)
        except Exception as e:  # a corrupt file can fail anywhere in a decoder
            skipped.append(f"{listing.names[k]} ({e})")
            continue
        arrays.append(array)
        kept.append(k)
        all_grey &= grey
    if not arrays:
        raise DataError(f"none of the {len(paths)} image files in {root} could be read (e.g. {skipped[0]})")
    if skipped:
        log.warning("%s", unreadable_note(f"folder:{root}", skipped, len(paths)))
    if channels == 1 and not all_grey:
        log.warning("folder:%s holds colour images; converting them to grey (%s)", root, grey_reason)

    # 2. One array; a folder of grey images (channels None) keeps one channel.
    batch = np.stack(arrays)
    if channels is None and all_grey:
        batch = batch[..., :1]
    tensor = torch.from_numpy(batch).permute(0, 3, 1, 2).contiguous()
    if not classes:
        return FolderImages(tensor, None, ())
    log.info("folder:%s: %d classes from its subfolders (%s)", root, len(classes), ", ".join(classes))
    return FolderImages(tensor, torch.tensor([labels[k] for k in kept], dtype=torch.int64), classes)


def list_folder(root: Path, channels: int | None = None) -> FolderListing:
    """A folder's image files, classes and labels (see FolderListing); refuses a missing or empty folder."""
    if not root.is_dir():
        raise DataError(f"folder {root} does not exist; pass a folder of images, e.g. folder:./faces")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 for folder:{root}; got {channels}")
    with gc_paused():
        return _list_folder(root)


def _list_folder(root: Path) -> FolderListing:
    scanned = scan_images(root)
    if not scanned:
        raise DataError(f"no images in {root} (looked for {', '.join(EXTENSIONS)}); pass a folder of images")
    parts = [p for p, _ in scanned]
    classes = class_folders(parts)
    index = {name: k for k, name in enumerate(classes)}
    base = str(root)
    return FolderListing(
        [os.path.join(base, *p) for p in parts],
        ["/".join(p) for p in parts],
        [stamp for _, stamp in scanned],
        classes,
        [index[p[0]] for p in parts] if classes else [],
    )


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
