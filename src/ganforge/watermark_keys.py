"""Watermark keys: 256 secret bits in a 0600 file, written once; found by flag, variable or per-user default."""

from __future__ import annotations

import logging
import os
import secrets
import tempfile
from pathlib import Path

from ganforge.errors import ConfigError

log = logging.getLogger(__name__)

KEY_BYTES = 32
KEY_ENV = "GANFORGE_KEY_FILE"
KEY_NAME = "watermark.key"
_HEADER = "# ganforge watermark key (256 bits, hex): keep it secret; whoever holds it can read and forge the mark"


def new_key() -> bytes:
    """256 random bits from the operating system's CSPRNG."""
    return secrets.token_bytes(KEY_BYTES)


def write_key(path: str | Path, key: bytes | None = None) -> Path:
    """Write a new key (or `key`) to `path`, mode 0600, atomically; refuses to replace an existing file.

    The key is written to a temporary file in the same folder, then hard-linked to `path`: the link
    fails when anything is already there, so two writers never overwrite each other's key.
    """
    path = Path(path)
    key = new_key() if key is None else key
    if len(key) != KEY_BYTES:
        raise ConfigError(f"a watermark key has {KEY_BYTES} bytes; got {len(key)}")
    if path.exists() or path.is_symlink():
        raise ConfigError(f"key file {path} already exists; a key is never overwritten: choose another path")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)  # made 0600
    except OSError as e:
        raise ConfigError(f"cannot write key file {path}: {e.strerror}; choose a writable path") from e
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(f"{_HEADER}\n{key.hex()}\n")
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o600)
        try:
            os.link(tmp, path)
        except FileExistsError:
            raise ConfigError(
                f"key file {path} already exists; a key is never overwritten: choose another path"
            ) from None
        except OSError as e:
            raise ConfigError(f"cannot write key file {path}: {e.strerror}; choose a writable path") from e
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read_key(path: str | Path) -> bytes:
    """The key in a file written by `write_key` (64 hex digits; lines starting with '#' are comments)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        raise ConfigError(f"key file {path} does not exist; make one with `ganforge key new --out {path}`") from None
    except (OSError, UnicodeDecodeError) as e:
        why = e.strerror if isinstance(e, OSError) else "not a text file"
        raise ConfigError(f"cannot read key file {path}: {why}; pass a file made by `ganforge key new`") from None
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    try:
        key = bytes.fromhex(lines[0]) if len(lines) == 1 else b""
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise ConfigError(
            f"key file {path} does not hold one {KEY_BYTES * 2}-digit hex key; pass a file made by `ganforge key new`"
        )
    return key


def default_key_path() -> Path:
    """The per-user key: $GANFORGE_HOME/watermark.key, else ~/.cache/ganforge/watermark.key."""
    home = os.environ.get("GANFORGE_HOME")
    return (Path(home) if home else Path.home() / ".cache" / "ganforge") / KEY_NAME


def resolve_key(key_file: str | Path | None = None) -> tuple[bytes, Path]:
    """The key and its file: `key_file`, else $GANFORGE_KEY_FILE, else the per-user key (made on first use)."""
    found = existing_key(key_file)
    if found is not None:
        return found
    path = default_key_path()
    try:
        write_key(path)
        log.info("watermark: made a new per-user key at %s (keep it to detect your images later)", path)
    except ConfigError:
        if not path.exists():  # another process made it meanwhile: use theirs
            raise
    return read_key(path), path


def existing_key(key_file: str | Path | None = None) -> tuple[bytes, Path] | None:
    """resolve_key's key where one exists, else None: what reading marks needs (a new key finds no mark)."""
    if key_file is not None and str(key_file) != "":
        return read_key(key_file), Path(key_file)
    env = os.environ.get(KEY_ENV)
    if env:
        return read_key(env), Path(env)
    path = default_key_path()
    return (read_key(path), path) if path.exists() else None
