"""Atomic file writes: a temporary file in the same folder, renamed into place."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from ganforge.errors import GanforgeError

# What a write may never replace: renaming onto these would swap a device node, a pipe or a socket
# for a regular file (or fail on a folder), which no user asking for "--out X" means.
_SPECIAL_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISSOCK, "a socket"),
)


def write_target(path: str | Path) -> Path:
    """The file a write to `path` replaces: `path`, or the file a symlink points to; refuses special files.

    Only a regular file or nothing may be replaced. A folder, device, FIFO or socket (also behind a link)
    raises GanforgeError naming the path and what it is.
    """
    path = Path(path)
    # A link stays a link: the file it points to is replaced, in that file's own folder.
    target = Path(os.path.realpath(path)) if path.is_symlink() else path
    try:
        mode = target.stat().st_mode
    except FileNotFoundError:
        return target
    except OSError as e:
        raise GanforgeError(f"cannot write {path}: {e.strerror}; choose a writable output path") from e
    for is_kind, kind in _SPECIAL_KINDS:
        if is_kind(mode):
            via = f" (a link to {target})" if target != path else ""
            fix = "pass a file path inside it" if kind == "a folder" else "pass the path of a regular file"
            raise GanforgeError(f"cannot write {path}{via}: it is {kind}, not a regular file; {fix}")
    return target


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside the target; rename it onto the target only if the block succeeds.

    The target is `path`, or the file a symlink at `path` points to (the link stays). A folder,
    device, FIFO or socket at the target raises GanforgeError before anything is written.
    """
    path = Path(path)
    target = write_target(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as e:
        raise GanforgeError(f"cannot write {path}: {e.strerror}; choose a writable output path") from e
    os.close(fd)
    tmp = Path(tmp_name)
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o666 & ~umask)  # mkstemp makes 0600; a finished file gets the usual permissions
    try:
        try:
            yield tmp
        except (OSError, RuntimeError) as e:  # torch.save reports a full disk as a RuntimeError from its writer
            if is_disk_full(e, target.parent):
                raise DiskFullError(
                    f"cannot write {path}: no space left on the device; free some space and retry"
                ) from e
            raise
        # Checked again: the block may have run long, and something else may have appeared there meanwhile.
        if write_target(path) != target:
            raise GanforgeError(f"cannot write {path}: it changed while being written (a link now points elsewhere)")
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


class DiskFullError(GanforgeError):
    """A write failed because the file system is full (or over quota)."""


def is_disk_full(error: BaseException, folder: Path) -> bool:
    """True when `error` came from a full file system: ENOSPC / EDQUOT, or a writer's failure with < 1 MiB free."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    try:
        return shutil.disk_usage(folder).free < (1 << 20)
    except OSError:
        return False


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Write `data` to path atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write `text` to path atomically (see atomic_path)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def file_digest(path: str | Path, algorithm: str = "sha256") -> str:
    """Hex digest of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.new(algorithm)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def read_sha256sums(path: str | Path) -> dict[str, str]:
    """file name -> sha256 hex from a SHA256SUMS file (`<hex>  <name>` lines, as sha256sum writes); {} if missing."""
    path = Path(path)
    if not path.is_file():
        return {}
    pairs = (line.split(maxsplit=1) for line in path.read_text().splitlines() if line.strip())
    return {name.strip().lstrip("*"): digest for digest, name in pairs}
