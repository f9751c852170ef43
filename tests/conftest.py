"""Shared fixtures: no test reaches the network or the user's cache; the real MNIST test digits when present."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The `shared` folder beside the checkout; GANFORGE_SHARED points elsewhere (a missing folder hides it,
# to check that the suite passes on a fresh clone).
SHARED = Path(os.environ.get("GANFORGE_SHARED") or Path(__file__).resolve().parents[2] / "shared")
# The official MNIST test split (t10k files) in it, or None.
_SHARED_MNIST = SHARED / "data" / "mnist"
SHARED_MNIST: Path | None = _SHARED_MNIST if (_SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file() else None
SHARED_MNIST_MISSING = (
    f"needs the MNIST test split in {_SHARED_MNIST} (or $GANFORGE_SHARED/data/mnist): "
    f"ganforge data prepare mnist --data-dir {_SHARED_MNIST}"
)

# Debian's Chromium for the browser tests; GANFORGE_TEST_CHROMIUM=none hides it, or names another binary.
_chromium = os.environ.get("GANFORGE_TEST_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM: str | None = _chromium if _chromium != "none" and Path(_chromium).is_file() else None
CHROMIUM_MISSING = "needs Debian's chromium: apt-get install chromium (or set GANFORGE_TEST_CHROMIUM to its path)"
UNREACHABLE_MIRROR = "http://127.0.0.1:9/"  # the discard port: connection refused at once


@pytest.fixture(autouse=True)
def _offline_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh GANFORGE_HOME, no GANFORGE_DATA, and mirrors that refuse connections: tests stay offline."""
    home = tmp_path_factory.mktemp("ganforge_home")
    monkeypatch.setenv("GANFORGE_HOME", str(home))
    monkeypatch.delenv("GANFORGE_DATA", raising=False)
    monkeypatch.setenv("GANFORGE_MNIST_MIRRORS", UNREACHABLE_MIRROR)
    monkeypatch.setenv("GANFORGE_FASHION_MNIST_MIRRORS", UNREACHABLE_MIRROR)
    return home


@pytest.fixture(scope="session")
def emoji_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One GANFORGE_HOME for every emoji test module: the set is rendered once a session, then read from its cache."""
    return tmp_path_factory.mktemp("emoji_home")


@pytest.fixture
def shared_mnist() -> Path:
    """The folder of real MNIST test digits; skips the test when it is absent."""
    if SHARED_MNIST is None:
        pytest.skip(SHARED_MNIST_MISSING)
    return SHARED_MNIST


def save_tiny_generator(folder: Path, num_classes: int = 0, **model: object) -> Path:
    """A tiny untrained MLP generator file (8x8 grey unless `model` says otherwise) in folder; returns its path."""
    import torch

    from ganforge.checkpoint import save_generator
    from ganforge.config import ModelConfig
    from ganforge.models import build_generator

    torch.manual_seed(0)
    cfg = ModelConfig(**{"arch": "mlp", "image_size": 8, "channels": 1, "z_dim": 6, "width": 16, **model},
                      num_classes=num_classes)  # fmt: skip
    path = folder / "generator.safetensors"
    data = "toy:ring8" if cfg.shape == (2, 1, 1) else "mnist"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test", "step": 3, "data": data, "seed": 0})
    return path


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    """A tiny unconditional generator file (the sample and project tests)."""
    return save_tiny_generator(tmp_path / "plain")


@pytest.fixture
def conditional(tmp_path: Path) -> Path:
    """A tiny generator file conditional on 3 classes."""
    return save_tiny_generator(tmp_path / "cond", num_classes=3)
