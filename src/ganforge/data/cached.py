"""Packed data as Datasets: packed:DIR memory-mapped, and folder:DIR / zip:FILE through their pack in the cache."""

from __future__ import annotations

import logging
from pathlib import Path

from ganforge.data.dataset import Dataset
from ganforge.data.folder import DEFAULT_SIZE, conform, unreadable_note
from ganforge.data.packed import Packed, open_packed
from ganforge.errors import DataError

log = logging.getLogger("ganforge.data")  # the package's logger, as before the split

MAX_CONVERT_BYTES = 1 << 30  # a packed set of another shape than the model's is converted in memory up to this


def dataset_from_pack(spec: str, name: str, found: Packed, source: str) -> Dataset:
    meta = found.meta
    return Dataset(
        spec, name, found.images, found.labels, int(meta["num_classes"]), "all", source,
        tuple(meta.get("class_names") or ()), resize_filter=meta.get("resize_filter"), digest=found.digest,
    )  # fmt: skip


def load_packed(spec: str, root: Path, image_size: int | None, channels: int | None) -> Dataset:
    """packed:DIR, memory-mapped; a model of another size or channels gets a converted copy when it is small."""
    if not root.is_dir():
        raise DataError(f"packed dataset {root} does not exist; make it with `ganforge data pack SRC --out {root}`")
    ds = dataset_from_pack(spec, "packed", open_packed(root), str(root))
    c, h, _ = ds.images.shape[1:]
    if (image_size in (None, h)) and (channels in (None, c)):
        return ds
    if ds.images.numel() > MAX_CONVERT_BYTES:
        raise DataError(
            f"{spec} holds {h}x{h} images with {c} channel(s); the model takes {image_size or h}x{image_size or h} "
            f"with {channels or c}: pack it at that shape (`ganforge data pack {spec} --out DEST --image-size "
            f"{image_size or h} --channels {channels or c}`) or train at --image-size {h} --channels {c}"
        )
    log.info("%s: converting %d images from %dx%d to the model's shape in memory", spec, len(ds), h, h)
    ds.images = conform(ds.in_memory(), image_size=image_size, channels=channels)
    ds.resize_filter = "bilinear"
    return ds


def load_cached(spec: str, kind: str, arg: str, image_size: int | None, channels: int | None) -> Dataset:
    """folder:DIR or zip:FILE through its packed copy in the cache (made on first use, remade when changed)."""
    from ganforge.data.pack import cached_pack  # pack imports this package: import when needed

    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3 for {spec}; got {channels}")
    size = image_size or DEFAULT_SIZE
    dest, made = cached_pack(spec, image_size=size, channels=channels)
    found = open_packed(dest)
    skipped = list(found.meta.get("skipped") or [])
    if skipped:
        log.warning("%s", unreadable_note(spec, skipped, int(found.meta["count"]) + len(skipped)))
    if made is not None:
        log.info("%s: packed %s into the cache (%s, %.1f s); later runs start from there", spec,
                 f"{made.count:,} images", dest, made.seconds)  # fmt: skip
    if channels == 1 and found.meta.get("colour_to_grey"):
        log.warning("%s holds colour images; converting them to grey (pass --channels 3 to keep colour)", spec)
    ds = dataset_from_pack(spec, kind, found, str(Path(arg).expanduser()))
    if ds.class_names and made is not None:
        log.info("%s: %d classes (%s)", spec, len(ds.class_names), ", ".join(ds.class_names))
    return ds
