"""Downloads from a local HTTP server: success, cut-short and corrupt mirrors, no network, the sample fallback."""

from __future__ import annotations

import hashlib
import http.server
import logging
import socket
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from conftest import UNREACHABLE_MIRROR

from ganforge.data import download as dl
from ganforge.data import idx, load_dataset, prepare
from ganforge.errors import DataError

FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


class _Handler(http.server.BaseHTTPRequestHandler):
    """/good/F serves F; /cut/F promises all of F but sends half; /bad/F serves F with one byte changed."""

    files: dict[str, bytes] = {}

    def do_GET(self) -> None:
        _, mode, name = self.path.split("/", 2)
        body = self.files.get(name)
        if body is None or mode not in ("good", "cut", "bad"):
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if mode == "cut":
            body = body[: len(body) // 2]
        elif mode == "bad":
            body = body[:-1] + bytes([body[-1] ^ 1])
        self.wfile.write(body)

    def log_message(self, format, *args):
        pass


@pytest.fixture
def small_mnist(tmp_path):
    """Two small gzipped IDX files (a 12-image test split) and their md5 sums."""
    rng = np.random.default_rng(1)
    folder = tmp_path / "src"
    folder.mkdir()
    idx.write_idx(folder / FILES[0], rng.integers(0, 256, (12, 28, 28), dtype=np.uint8))
    idx.write_idx(folder / FILES[1], np.arange(12, dtype=np.uint8) % 10)
    files = {f: (folder / f).read_bytes() for f in FILES}
    return files, {f: hashlib.md5(b).hexdigest() for f, b in files.items()}


@pytest.fixture
def server(small_mnist):
    _Handler.files = small_mnist[0]
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_download_success(server, small_mnist, tmp_path):
    dest = tmp_path / "cache" / "mnist"
    out = dl.download("mnist", dest, FILES, mirrors=[server + "/good/"], checksums=small_mnist[1])
    assert out == dest and _leftovers(dest) == sorted(FILES)
    assert (dest / FILES[0]).read_bytes() == small_mnist[0][FILES[0]]


@pytest.mark.parametrize("broken", ["cut", "bad"])
def test_broken_mirror_is_skipped_and_leaves_nothing(server, small_mnist, tmp_path, caplog, broken):
    dest = tmp_path / "cache"
    mirrors = [f"{server}/{broken}/", f"{server}/good/"]
    dl.download("mnist", dest, FILES, mirrors=mirrors, checksums=small_mnist[1])
    assert _leftovers(dest) == sorted(FILES)
    assert "cut short" in caplog.text if broken == "cut" else "bad checksum" in caplog.text


def test_all_mirrors_bad(server, small_mnist, tmp_path):
    dest = tmp_path / "cache"
    with pytest.raises(DataError, match="cut short.*bad checksum|bad checksum.*cut short") as info:
        dl.download("mnist", dest, FILES, mirrors=[f"{server}/cut/", f"{server}/bad/"], checksums=small_mnist[1])
    assert not isinstance(info.value, dl.NetworkError)
    assert _leftovers(dest) == []


def test_unreachable_is_network_error(server, small_mnist, tmp_path):
    with pytest.raises(dl.NetworkError, match="no network"):
        dl.download("mnist", tmp_path / "cache", FILES, mirrors=[UNREACHABLE_MIRROR, f"{server}/missing/"])
    assert _leftovers(tmp_path / "cache") == []


def test_mirrors_from_env(monkeypatch):
    monkeypatch.setenv("GANFORGE_MNIST_MIRRORS", "http://a/x, http://b/")
    assert dl.mirrors_for("mnist") == ["http://a/x/", "http://b/"]
    assert dl.mirrors_for("mnist", ["http://c"]) == ["http://c/"]
    monkeypatch.delenv("GANFORGE_MNIST_MIRRORS")
    assert dl.mirrors_for("mnist")[0].startswith("https://ossci-datasets")


def test_load_mnist_downloads_into_cache(server, small_mnist, monkeypatch, _offline_home):
    monkeypatch.setitem(dl.CHECKSUMS, "mnist", {**dl.CHECKSUMS["mnist"], **small_mnist[1]})
    ds = load_dataset("mnist", split="test", mirrors=[f"{server}/cut/", f"{server}/good/"])
    assert ds.name == "mnist" and ds.split == "test" and ds.images.shape == (12, 1, 28, 28) and ds.num_classes == 10
    assert _leftovers(_offline_home / "mnist") == sorted(FILES)
    again = load_dataset("mnist", split="test", mirrors=[UNREACHABLE_MIRROR])  # now found in the cache
    assert again.content_hash() == ds.content_hash()


def test_no_network_falls_back_to_sample(caplog, _offline_home):
    with caplog.at_level(logging.WARNING):
        ds = load_dataset("mnist")  # the conftest mirrors refuse connections
    assert ds.name == "mnist-sample" and ds.spec == "mnist" and len(ds) == 5000
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (
        len(warnings) == 1 and "no network" in warnings[0].getMessage() and "mnist-sample" in warnings[0].getMessage()
    )
    assert not (_offline_home / "mnist").exists()


def test_no_network_test_split_is_an_error():
    with pytest.raises(DataError, match=r"mnist \(test\) not found.*no network.*--data-dir"):
        load_dataset("mnist", split="test")


def test_download_disabled_falls_back(caplog):
    with caplog.at_level(logging.WARNING):
        assert load_dataset("mnist", download=False).name == "mnist-sample"
    assert "download disabled" in caplog.text


def test_prepare(server, small_mnist, tmp_path, monkeypatch):
    with pytest.raises(DataError, match="cannot prepare 'nope'"):
        prepare("nope")
    monkeypatch.setitem(dl.CHECKSUMS, "mnist", small_mnist[1])
    dest = prepare("mnist", data_dir=tmp_path / "here", mirrors=[f"{server}/good/"])
    assert _leftovers(dest) == sorted(FILES)


@pytest.mark.parametrize(
    "reason", [socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"), TimeoutError("timed out")]
)
def test_offline_error_stops_at_first_mirror(monkeypatch, tmp_path, reason):
    calls = []

    def refuse(url, timeout):
        calls.append(url)
        raise urllib.error.URLError(reason)

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    with pytest.raises(dl.NetworkError):
        dl.download("mnist", tmp_path, FILES, mirrors=["http://a.invalid/", "http://b.invalid/"])
    assert len(calls) == 1
