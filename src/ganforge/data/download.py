"""Download MNIST-style IDX files from mirrors, verifying size and md5, renaming into place atomically."""

from __future__ import annotations

import errno
import hashlib
import http.client
import logging
import os
import socket
import sys
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from ganforge.errors import DataError
from ganforge.io import atomic_path, file_digest

log = logging.getLogger(__name__)

TIMEOUT_S = 5.0
CHUNK_BYTES = 1 << 16

MIRRORS: dict[str, tuple[str, ...]] = {
    "mnist": (
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "https://storage.googleapis.com/cvdf-datasets/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    "fashion-mnist": ("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
}
MIRRORS_ENV = {"mnist": "GANFORGE_MNIST_MIRRORS", "fashion-mnist": "GANFORGE_FASHION_MNIST_MIRRORS"}

# md5 of the published .gz files
CHECKSUMS: dict[str, dict[str, str]] = {
    "mnist": {
        "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
        "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
        "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
        "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
    },
    "fashion-mnist": {
        "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
        "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
        "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
        "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12e480ee83cd310",
    },
}

# Errors that say "this machine is offline", not "this mirror is down": no point trying other hosts.
_OFFLINE_ERRNOS = {errno.ENETUNREACH, errno.ENETDOWN, socket.EAI_AGAIN}


class NetworkError(DataError):
    """No mirror could be reached (offline, DNS failure, refused, timed out, HTTP error): no data came."""


class _Unreachable(Exception):
    """One mirror gave no data; `offline` when the error says the whole network is down."""

    def __init__(self, message: str, *, offline: bool = False) -> None:
        super().__init__(message)
        self.offline = offline


class _BadData(Exception):
    """One mirror sent data that failed verification (cut short, wrong checksum)."""


def mirrors_for(name: str, mirrors: Sequence[str] | None = None) -> list[str]:
    """The mirror base URLs to try, in order: `mirrors`, else $GANFORGE_*_MIRRORS, else the defaults."""
    if mirrors is None:
        env = os.environ.get(MIRRORS_ENV.get(name, ""), "")
        mirrors = [m.strip() for m in env.split(",") if m.strip()] or list(MIRRORS.get(name, ()))
    return [m if m.endswith("/") else m + "/" for m in mirrors]


def md5_file(path: str | Path) -> str:
    return file_digest(path, "md5")


def _is_offline(error: BaseException) -> bool:
    """DNS "try again", network unreachable, or a connect timeout: every other host would fail the same way.

    Stopping at the first such error keeps an offline start fast: a blackholed network would
    otherwise cost a timeout (or a resolver's retries) per mirror.
    """
    reason = getattr(error, "reason", error)
    return isinstance(reason, TimeoutError) or (isinstance(reason, OSError) and reason.errno in _OFFLINE_ERRNOS)


def _open(url: str) -> http.client.HTTPResponse:
    try:
        return urllib.request.urlopen(url, timeout=TIMEOUT_S)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as e:
        e.close()
        raise _Unreachable(f"{url}: HTTP {e.code} {e.reason}") from e
    except (urllib.error.URLError, OSError, http.client.HTTPException) as e:
        raise _Unreachable(f"{url}: {getattr(e, 'reason', e)}", offline=_is_offline(e)) from e


def _stream(url: str, response: http.client.HTTPResponse, dest: Path, md5: str | None, *, progress: bool) -> None:
    """Copy the response body into dest (a temporary file), checking Content-Length and md5."""
    from tqdm import tqdm

    length_header = response.headers.get("Content-Length")
    expected = int(length_header) if length_header and length_header.isdigit() else None
    digest = hashlib.md5()
    received = 0
    bar = tqdm(
        total=expected,
        unit="B",
        unit_scale=True,
        desc=url.rsplit("/", 1)[-1],
        file=sys.stderr,
        disable=not progress,
        leave=False,
    )
    try:
        with bar, open(dest, "wb") as out:
            while chunk := response.read(CHUNK_BYTES):
                out.write(chunk)
                digest.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
    except http.client.IncompleteRead as e:
        raise _BadData(f"{url}: cut short after {received + len(e.partial)} of {expected} bytes") from e
    except (OSError, http.client.HTTPException) as e:
        raise _BadData(f"{url}: transfer failed after {received} bytes ({e})") from e
    if expected is not None and received != expected:
        raise _BadData(f"{url}: cut short: expected {expected} bytes, received {received}")
    if md5 is not None and digest.hexdigest() != md5:
        raise _BadData(f"{url}: bad checksum: md5 {digest.hexdigest()}, expected {md5}")


def download_file(
    filename: str, dest_dir: str | Path, *, mirrors: Sequence[str], md5: str | None, progress: bool | None = None
) -> Path:
    """Fetch `filename` from the first mirror that serves it intact into dest_dir; returns its path.

    Nothing is left in dest_dir when every mirror fails: NetworkError when none could be reached,
    DataError when some sent data that failed verification.
    """
    path = Path(dest_dir) / filename
    show = sys.stderr.isatty() if progress is None else progress
    unreachable: list[str] = []
    bad: list[str] = []
    for base in mirrors:
        url = urllib.parse.urljoin(base, filename)
        try:
            with _open(url) as response, atomic_path(path) as tmp:
                _stream(url, response, tmp, md5, progress=show)
        except _Unreachable as e:
            log.debug("download: %s", e)
            unreachable.append(str(e))
            if e.offline:
                break
            continue
        except _BadData as e:
            log.warning("download: %s; trying the next mirror", e)
            bad.append(str(e))
            continue
        log.info("downloaded %s from %s", filename, base)
        return path
    failures = "; ".join(bad + unreachable) or "no mirrors given"
    if bad:
        raise DataError(f"could not download {filename}: {failures}; try again later or pass --data-dir with the files")
    raise NetworkError(
        f"could not download {filename}, no network or no mirror reachable ({failures}); "
        "run where a network is, or pass --data-dir with the IDX files"
    )


def download(
    name: str,
    dest_dir: str | Path,
    files: Sequence[str] | None = None,
    *,
    mirrors: Sequence[str] | None = None,
    checksums: Mapping[str, str | None] | None = None,
    progress: bool | None = None,
) -> Path:
    """Download `files` (default: all four) of data set `name` into dest_dir, skipping intact ones already there.

    Args:
        checksums: md5 by file name, replacing the published ones (tests serve their own files).
    """
    known = CHECKSUMS.get(name)
    if known is None and checksums is None:
        raise DataError(f"no download known for {name!r}; use one of {', '.join(CHECKSUMS)}")
    sums: dict[str, str | None] = dict(known or {})
    sums.update(checksums or {})
    urls = mirrors_for(name, mirrors)
    dest = Path(dest_dir)
    for filename in files if files is not None else list(sums):
        md5 = sums.get(filename)
        target = dest / filename
        if target.is_file() and md5 is not None and md5_file(target) == md5:
            log.debug("%s is already there", target)
            continue
        download_file(filename, dest, mirrors=urls, md5=md5, progress=progress)
    return dest
