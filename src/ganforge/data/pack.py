"""`ganforge data pack`: decode a data spec once, in worker processes, into a packed dataset or a dataset zip."""

from __future__ import annotations

import hashlib
import json
import logging
import multiprocessing
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ganforge.data import packed, zipdata
from ganforge.data.folder import DEFAULT_SIZE, gc_paused, list_folder, unreadable_note
from ganforge.data.writers import ShardWriter, ZipWriter
from ganforge.decoding import (
    AUTO_FILTER,
    DECODER,
    FILTERS,
    Item,
    close_zips,
    decode,
    decode_chunk,
    fit,
    open_item,
    png_bytes,
)
from ganforge.errors import DataError
from ganforge.version import __version__

log = logging.getLogger(__name__)

CHUNK = 64  # images a worker decodes per task
PROBE = 64  # files looked at first for the native size and colour
MAX_NATIVE = 256  # without --image-size, larger images are packed at DEFAULT_SIZE


@dataclass
class Source:
    """What a spec packs from: files (decoded in workers) or an in-memory array; labels; a description."""

    spec: str
    items: list[Item]
    labels: list[int] | None
    class_names: tuple[str, ...]
    description: str
    array: Any = None  # (N, C, H, W) uint8 images of an in-memory spec (mnist, idx:DIR, packed:DIR ...)
    stamps: list[Any] | None = None  # a folder's [name, size, mtime_ns] a file, from its scan


@dataclass
class PackResult:
    """What pack() made: where, how many, the shape, the resize filters used, the files skipped, how fast."""

    out: Path
    count: int
    shape: tuple[int, int, int]
    resize_filter: str
    resized: dict[str, int]
    skipped: list[str]
    total: int
    seconds: float
    workers: int
    digest: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> str:
        """One line: count, shape, filter, time, and the files skipped."""
        c, h, w = self.shape
        kind = "zip" if self.out.suffix == ".zip" else "packed"
        rate = self.total / max(self.seconds, 1e-9)
        line = (
            f"{kind} {self.count:,} images ({w}x{h} {'grey' if c == 1 else 'RGB'}) into {self.out}; "
            f"resize filter {describe_filters(self.resized)}; {self.seconds:.1f} s ({rate:,.0f} img/s, "
            f"{self.workers} worker{'s' if self.workers != 1 else ''})"
        )
        if self.skipped:
            line += "; " + unreadable_note("", self.skipped, self.total).removeprefix(": ")
        return line


def describe_filters(resized: dict[str, int]) -> str:
    """'lanczos', or 'box (all 1,000 a whole-number factor)', or 'lanczos (box for 300 a whole-number factor)'."""
    used = {k: v for k, v in resized.items() if v and k != "none"}
    if not used:
        return "none (every image was already at the size)"
    if len(used) == 1:
        name = next(iter(used))
        return name + (" (every factor a whole number)" if name == "box" else "")
    main = max(used, key=lambda k: used[k])
    rest = ", ".join(f"{k} for {v:,}" for k, v in used.items() if k != main)
    note = " with a whole-number factor" if "box" in used and main != "box" else ""
    return f"{main} ({rest}{note})"


def filter_name(resized: dict[str, int]) -> str:
    """The filter recorded in dataset.json: the one used, or "box+lanczos" style when several were."""
    used = sorted(k for k, v in resized.items() if v and k != "none")
    return "+".join(used) if used else "none"


def default_workers() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


# -- sources ---------------------------------------------------------------------------------------


def open_source(spec: str) -> Source:
    """The images a spec names, not decoded yet: folder:DIR (or a folder path), zip:FILE, or any loadable spec."""
    kind, _, arg = spec.partition(":")
    if kind == "folder" or (not arg and Path(spec).expanduser().is_dir() and not packed.is_packed(spec)):
        root = Path(arg or spec).expanduser()
        listing = list_folder(root)
        items: list[Item] = [("file", f) for f in listing.files]
        labels = listing.labels if listing.classes else None
        stamps = [[n, *st] for n, st in zip(listing.names, listing.stamps, strict=True)]
        return Source(f"folder:{root}", items, labels, listing.classes, str(root), stamps=stamps)
    if kind == "zip" or (not arg and spec.endswith(".zip")):
        path = Path(arg or spec).expanduser()
        names, zip_labels, classes, _ = zipdata.read_index(path)
        zip_items: list[Item] = [("zip", str(path), n) for n in names]
        return Source(f"zip:{path}", zip_items, zip_labels, classes, str(path))
    from ganforge.data import load_dataset

    if kind == "toy":
        raise DataError(f"{spec} is 2-D points, not images; there is nothing to pack")
    ds = load_dataset(spec, split="train" if ":" not in spec else "all")
    array = ds.images.to_tensor() if isinstance(ds.images, packed.ShardedImages) else ds.images
    ds_labels = ds.labels.tolist() if ds.labels is not None else None
    return Source(spec, [], ds_labels, ds.class_names, f"{ds.name} {ds.split} ({ds.source})", array=array.numpy())


def source_fingerprint(source: Source) -> list[Any]:
    """Names, sizes and modification times of a source's files (the cache key's data part)."""
    if source.stamps is not None:
        return source.stamps
    files = sorted({item[1] for item in source.items})
    return [[f, st.st_size, st.st_mtime_ns] for f in files for st in [os.stat(f)]]


# -- decoding, in worker processes -----------------------------------------------------------------


def _array_chunk(
    images: np.ndarray, size: int, channels: int, resize_filter: str
) -> tuple[list[Any], list[bool], list[str]]:
    """In-process: (n, C, H, W) uint8 of an in-memory spec -> fitted (size, size, channels) arrays."""
    from PIL import Image

    out, greys, used = [], [], []
    for image in images:
        hwc = image.transpose(1, 2, 0)
        pil = Image.fromarray(hwc[..., 0] if hwc.shape[-1] == 1 else hwc)
        fitted, name = fit(pil, size, resize_filter)
        array = np.asarray(fitted)
        array = array[..., None] if array.ndim == 2 else array
        if channels == 1 and array.shape[-1] == 3:
            array = np.asarray(fitted.convert("L"))[..., None]
        elif channels == 3 and array.shape[-1] == 1:
            array = np.repeat(array, 3, axis=-1)
        out.append(array)
        greys.append(hwc.shape[-1] == 1 or bool((hwc == hwc[..., :1]).all()))
        used.append(name)
    return out, greys, used


def _decoded(
    source: Source, size: int, channels: int, resize_filter: str, workers: int, as_png: bool
) -> Iterator[tuple[int, Any, bool, str, list[str]]]:
    """(source index, array or PNG, grey, filter, errors) per image in order; None for an unreadable one."""
    if source.array is not None:
        for start in range(0, len(source.array), 1024):
            arrays, greys, used = _array_chunk(source.array[start : start + 1024], size, channels, resize_filter)
            for k, (a, g, u) in enumerate(zip(arrays, greys, used, strict=True)):
                yield start + k, png_bytes(a) if as_png else a, g, u, []
        return
    tasks = [
        (source.items[s : s + CHUNK], size, channels, resize_filter, as_png) for s in range(0, len(source.items), CHUNK)
    ]
    if workers <= 1 or len(tasks) <= 1:
        results: Iterator[Any] = map(decode_chunk, tasks)
        pool = None
    else:
        # forkserver: workers start from a clean single-threaded process (no fork of torch's threads)
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(["ganforge.decoding"])  # PIL and numpy only: a fast start
        pool = ctx.Pool(min(workers, len(tasks)))
        results = pool.imap(decode_chunk, tasks)
    try:
        index = 0
        for out, greys, used, errors in results:
            found = iter(zip(greys, used, strict=True))
            for value in out:
                if value is None:
                    yield index, None, False, "", [errors.pop(0)]
                else:
                    grey, name = next(found)
                    yield index, value, grey, name, []
                index += 1
    finally:
        close_zips()  # those the probe or an in-process decode opened
        if pool is not None:
            pool.terminate()
            pool.join()


class _Colour(Exception):
    """A colour image turned up in a set that the probe took for grey: pack again at 3 channels."""


def probe_shape(source: Source, size: int | None = None) -> tuple[int, int]:
    """(channels, short side) of a source: 1 when the first PROBE images are all grey, else 3.

    The short sides come from the files' headers; greyness from decoding them as the pack will (at `size`, else
    at the size the sides give), stopping at the first colour image.
    """
    if source.array is not None:
        c, h, w = source.array.shape[1:]
        grey = c == 1 or bool((source.array[:PROBE] == source.array[:PROBE, :1]).all())
        return (1 if grey else 3), min(h, w)
    sides: Counter[int] = Counter()
    readable: list[Item] = []
    for item in source.items[:PROBE]:
        try:
            with Image.open(open_item(item)) as opened:
                sides[min(opened.size)] += 1
        except Exception:  # counted when packed
            continue
        readable.append(item)
    if not sides:  # nothing readable among the first: colour, and the pack says what it could read
        return 3, DEFAULT_SIZE
    side = sides.most_common(1)[0][0]
    target = size or (side if side <= MAX_NATIVE else DEFAULT_SIZE)
    for item in readable:
        try:
            if not decode(open_item(item), target, 3)[1]:
                return 3, side
        except Exception:  # counted when packed
            continue
    return 1, side


def native_shape(spec: str) -> tuple[int, int]:
    """(channels, size) of a folder's, zip's or packed set's images: a pack's shape, else probe_shape's."""
    kind, _, arg = spec.partition(":")
    if kind == "packed":
        c, h, _ = packed.read_meta(Path(arg).expanduser())["shape"]
        return int(c), int(h)
    return probe_shape(open_source(spec))


# -- packing ---------------------------------------------------------------------------------------


def pack(
    spec: str,
    out: str | Path,
    *,
    image_size: int | None = None,
    channels: int | None = None,
    resize_filter: str = AUTO_FILTER,
    workers: int | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> PackResult:
    """Decode every image of `spec` once into `out`: a packed dataset folder, or (out ending .zip) a dataset zip.

    image_size: default the images' own short side (at most MAX_NATIVE, else DEFAULT_SIZE); channels: default 1
    when the images are grey, else 3; resize_filter: lanczos, box, bicubic, bilinear or auto (box when the factor
    is a whole number, else Lanczos). Unreadable files are skipped and listed in the result. Nothing is left at
    `out` unless the whole pack succeeds.

    Example:
        >>> pack("folder:photos", "photos.pack", image_size=64).summary()
    """
    if resize_filter != AUTO_FILTER and resize_filter not in FILTERS:
        raise DataError(f"unknown resize filter {resize_filter!r}; use one of {', '.join(FILTERS)}")
    if channels not in (None, 1, 3):
        raise DataError(f"channels must be 1 or 3; got {channels}")
    if image_size is not None and not 1 <= image_size <= 4096:
        raise DataError(f"image size must be 1 to 4096 pixels; got {image_size}")
    out = Path(out).expanduser()
    is_zip = out.suffix.lower() == ".zip"
    if not is_zip and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise DataError(f"{out} already exists; pass a new --out folder (or delete it first)")
    source = open_source(spec)
    probed_channels, side = probe_shape(source, image_size) if channels is None or image_size is None else (channels, 0)
    size = image_size or (side if side <= MAX_NATIVE else DEFAULT_SIZE)
    workers = workers or default_workers()
    try:
        return _pack(source, out, size, channels or probed_channels, channels is None, resize_filter, workers,
                     on_progress)  # fmt: skip
    except _Colour:
        log.info("%s: a colour image among grey ones; packing again at 3 channels", source.spec)
        return _pack(source, out, size, 3, False, resize_filter, workers, on_progress)


def _pack(
    source: Source,
    out: Path,
    size: int,
    channels: int,
    auto_channels: bool,
    resize_filter: str,
    workers: int,
    on_progress: Callable[[int, int], None] | None,
) -> PackResult:
    t0 = time.perf_counter()
    total = len(source.array) if source.array is not None else len(source.items)
    is_zip = out.suffix.lower() == ".zip"
    writer: ZipWriter | ShardWriter = ZipWriter(out) if is_zip else ShardWriter(out, (channels, size, size))
    kept: list[int] = []
    resized: Counter[str] = Counter()
    skipped: list[str] = []
    colour_to_grey = 0
    try:
        for index, value, grey, name, errors in _decoded(source, size, channels, resize_filter, workers, is_zip):
            if value is None:
                skipped.extend(errors)
            else:
                if auto_channels and channels == 1 and not grey:
                    raise _Colour
                colour_to_grey += channels == 1 and not grey
                writer.add(value)
                kept.append(index)
                resized[name] += 1
            if on_progress is not None and (index % 256 == 255 or index == total - 1):
                on_progress(index + 1, total)
        if not kept:
            raise DataError(
                f"none of the {total} image files in {source.description} could be read (e.g. {skipped[0]})"
            )
        labels = [source.labels[k] for k in kept] if source.labels is not None else None
        meta = {
            "count": len(kept),
            "shape": [channels, size, size],
            "num_classes": len(source.class_names) if labels is not None else 0,
            "class_names": list(source.class_names) if labels is not None else [],
            "resize_filter": filter_name(resized),
            "resize_policy": resize_filter,
            "resized": dict(resized),
            "source": source.spec,
            "source_description": source.description,
            "skipped": skipped,
            "colour_to_grey": colour_to_grey,
            "ganforge_version": __version__,
        }
        digest = writer.finish(labels, meta)
    except BaseException:
        writer.abort()
        raise
    seconds = time.perf_counter() - t0
    return PackResult(out, len(kept), (channels, size, size), filter_name(resized), dict(resized), skipped, total,
                      seconds, workers, digest, meta)  # fmt: skip


# -- the cache: folder:DIR and zip:FILE pack themselves on first use ---------------------------------


def cached_pack(
    spec: str, *, image_size: int, channels: int | None, resize_filter: str = AUTO_FILTER
) -> tuple[Path, PackResult | None]:
    """The packed copy of a folder or zip in the cache, made now if missing (PackResult) or stale (repacked).

    Keyed by the files' names, sizes and modification times and by the transform (size, channels, filter, and the
    decoder's version: decoding.DECODER);
    a changed folder gets a new pack and its old one is removed. Two processes packing at once (torchrun's
    ranks) each write their own temporary folder; the first rename wins and the other reads that one.
    """
    from ganforge.data.mnist import cache_dir

    with gc_paused():  # the key: every file's name, size and time from one scandir pass; no file is read
        source = open_source(spec)
        transform = {"size": image_size, "channels": channels, "filter": resize_filter, "version": packed.VERSION,
                     "decoder": DECODER}  # fmt: skip
        where = hashlib.sha256(json.dumps([source.spec, transform]).encode()).hexdigest()[:16]
        what = hashlib.sha256(json.dumps(source_fingerprint(source)).encode()).hexdigest()[:16]
    root = cache_dir() / "packed"
    dest = root / f"{where}-{what}"
    if packed.is_packed(dest):
        return dest, None
    for stale in root.glob(f"{where}-*"):
        if stale != dest and not stale.name.endswith(".tmp"):
            log.info("%s changed since it was packed; removing the old pack %s", source.spec, stale)
            shutil.rmtree(stale, ignore_errors=True)
    if len(source.items) > 1_000:
        log.info("%s: packing %d images into the cache, once", source.spec, len(source.items))
    probed = probe_shape(source, image_size)[0] if channels is None else channels
    try:
        result = _pack(source, dest, image_size, probed, channels is None, resize_filter, default_workers(), None)
    except _Colour:
        result = _pack(source, dest, image_size, 3, False, resize_filter, default_workers(), None)
    except OSError:  # another process renamed its pack into place first
        if packed.is_packed(dest):
            return dest, None
        raise
    return dest, result
