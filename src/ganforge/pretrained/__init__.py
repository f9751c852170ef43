"""Generators shipped inside the package: `pretrained:NAME` wherever a run directory or generator file is taken.

Each is NAME.safetensors (a ganforge generator file, weights stored as float16) with NAME.json beside it (what it
is, the preset command that trained it, its eval.json figures); SHA256SUMS records every file's digest, checked
when one is loaded. scripts/build_pretrained writes them from finished preset runs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ganforge.errors import CheckpointError
from ganforge.io import file_digest, read_sha256sums

PREFIX = "pretrained:"
FOLDER = Path(__file__).parent
SHA256SUMS = "SHA256SUMS"


def is_spec(text: str | Path) -> bool:
    """Whether a RUN_OR_FILE argument names a shipped generator (`pretrained:NAME`)."""
    return isinstance(text, str) and text.startswith(PREFIX)


def names(folder: Path | None = None) -> list[str]:
    """The shipped generators' names, sorted."""
    folder = FOLDER if folder is None else folder
    return sorted(p.stem for p in folder.glob("*.safetensors"))


def recorded_hashes(folder: Path | None = None) -> dict[str, str]:
    """file name -> sha256, from SHA256SUMS (`<hex>  <name>` lines)."""
    return read_sha256sums((FOLDER if folder is None else folder) / SHA256SUMS)


def resolve(spec: str, folder: Path | None = None) -> Path:
    """`pretrained:NAME` -> the path of its generator file, checked against the recorded sha256."""
    folder = FOLDER if folder is None else folder
    name = spec[len(PREFIX) :] if spec.startswith(PREFIX) else spec
    path = folder / f"{name}.safetensors"
    available = names(folder)
    if not name or "/" in name or "\\" in name or not path.is_file():
        which = ", ".join(PREFIX + n for n in available) if available else "none (this install ships no generators)"
        raise CheckpointError(f"no pretrained generator {name!r}; the shipped ones are: {which}")
    expected = recorded_hashes(folder).get(path.name)
    actual = file_digest(path, "sha256")
    if expected != actual:
        raise CheckpointError(
            f"pretrained generator {path} has sha256 {actual[:12]}..., but {folder / SHA256SUMS} records "
            f"{(expected or 'none')[:12]}...; the file is damaged or was replaced: reinstall ganforge"
        )
    return path


def card(name: str, folder: Path | None = None) -> dict[str, Any]:
    """NAME.json: what the generator is, how it was trained, its eval figures ({} when missing)."""
    folder = FOLDER if folder is None else folder
    path = folder / f"{name}.json"
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{path} is not valid JSON ({e}); reinstall ganforge") from e
    return data if isinstance(data, dict) else {}


def listing(folder: Path | None = None) -> list[dict[str, Any]]:
    """One row a shipped generator: name, description, size in bytes, headline figure."""
    folder = FOLDER if folder is None else folder
    rows = []
    for name in names(folder):
        info = card(name, folder)
        rows.append({
            "name": name, "spec": PREFIX + name, "description": str(info.get("description", "")),
            "bytes": (folder / f"{name}.safetensors").stat().st_size, "headline": str(info.get("headline", "")),
        })  # fmt: skip
    return rows
