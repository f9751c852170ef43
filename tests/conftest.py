"""Shared fixtures: no test reaches the network or the user's cache; the real MNIST test digits when present."""

from __future__ import annotations

from pathlib import Path

import pytest

# The official MNIST test split (t10k files) in the `shared` folder beside the checkout, or None.
_SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
SHARED_MNIST: Path | None = _SHARED_MNIST if (_SHARED_MNIST / "t10k-images-idx3-ubyte.gz").is_file() else None
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


@pytest.fixture
def shared_mnist() -> Path:
    """The folder of real MNIST test digits; skips the test when it is absent."""
    if SHARED_MNIST is None:
        pytest.skip("the shared MNIST test digits (../shared/data/mnist) are not here")
    return SHARED_MNIST
