"""The file formats: training checkpoints (torch, tensors only) and the generator file (safetensors).

Loading never runs code: checkpoints are read with `weights_only=True` and generator files are
safetensors. Every write goes to a temporary file that is renamed into place.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import nn

from ganforge import pretrained
from ganforge.config import ModelConfig, TrainConfig, model_config_from_dict
from ganforge.errors import CheckpointError, ConfigError
from ganforge.io import atomic_path, file_digest
from ganforge.models import Generator, build_generator
from ganforge.version import __version__

CHECKPOINT_FORMAT_VERSION = 1
GENERATOR_FORMAT = "ganforge.generator"
GENERATOR_FORMAT_VERSION = "1"
GENERATOR_FILE = "generator.safetensors"
_CHECKPOINT_NAME = re.compile(r"^step_(\d+)\.pt$")

log = logging.getLogger(__name__)


class _DamagedCheckpointError(CheckpointError):
    """A checkpoint file that cannot be read at all (truncated, overwritten, not a checkpoint)."""


def checkpoint_path(run_dir: str | Path, step: int) -> Path:
    return Path(run_dir) / "checkpoints" / f"step_{step:07d}.pt"


def list_checkpoints(run_dir: str | Path) -> list[tuple[int, Path]]:
    """(step, path) of every checkpoint in a run, by step."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _CHECKPOINT_NAME.match(p.name))]
    return sorted(found)


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The checkpoint with the highest step, or None."""
    found = list_checkpoints(run_dir)
    return found[-1][1] if found else None


def save_checkpoint(path: str | Path, payload: dict[str, Any]) -> None:
    """Write a training checkpoint atomically. payload: tensors, state dicts and builtins only."""
    with atomic_path(path) as tmp:
        torch.save({"format_version": CHECKPOINT_FORMAT_VERSION, **payload}, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read a training checkpoint without unpickling code."""
    path = Path(path)
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as e:
        raise CheckpointError(f"checkpoint {path} does not exist; pass an existing checkpoint") from e
    except Exception as e:  # torch raises RuntimeError, EOFError, UnpicklingError, ... for bad files
        raise _DamagedCheckpointError(
            f"checkpoint {path} is truncated or not a ganforge checkpoint ({type(e).__name__}); "
            "resume from an earlier checkpoint or start a new run"
        ) from e
    if not isinstance(payload, dict) or "format_version" not in payload:
        raise _DamagedCheckpointError(
            f"checkpoint {path} is not a ganforge checkpoint (no format version); "
            "resume from an earlier checkpoint or start a new run"
        )
    if payload["format_version"] != CHECKPOINT_FORMAT_VERSION:
        raise CheckpointError(
            f"checkpoint {path} has format version {payload['format_version']!r}, this ganforge reads "
            f"{CHECKPOINT_FORMAT_VERSION}; use the ganforge version that wrote it"
        )
    return payload


def checkpoint_config(path: str | Path) -> TrainConfig:
    """The training config a checkpoint was saved with."""
    payload = load_checkpoint(path)
    try:
        return TrainConfig.from_dict(json.loads(payload["config"]))
    except (KeyError, TypeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint {path} has no readable config ({e}); start a new run") from e


def load_latest_good(run_dir: str | Path) -> tuple[Path, dict[str, Any]]:
    """The newest checkpoint of a run that loads, and its payload.

    A damaged checkpoint (e.g. cut short by a full disk) is skipped with a one-line warning, so an
    older one (the last few are kept) resumes the run. One from another format version is not
    damaged: that stops the search with its own error rather than silently resuming further back.
    """
    found = list_checkpoints(run_dir)
    folder = Path(run_dir) / "checkpoints"
    if not found:
        raise CheckpointError(f"no checkpoint in {folder}; train without --resume first")
    for _, path in reversed(found):
        try:
            return path, load_checkpoint(path)
        except _DamagedCheckpointError as e:
            reason = e.__cause__.__class__.__name__ if e.__cause__ is not None else "no format version"
            log.warning("warning: skipping damaged checkpoint %s (%s); trying the one before it", path, reason)
    raise CheckpointError(
        f"none of the {len(found)} checkpoints in {folder} loads (all damaged); "
        "start a new run, or pass a good checkpoint with --resume-from"
    )


def prune_checkpoints(run_dir: str | Path, keep: int) -> None:
    """Delete all but the `keep` most recent checkpoints."""
    for _, path in list_checkpoints(run_dir)[:-keep]:
        path.unlink(missing_ok=True)


def save_generator(
    path: str | Path, G: nn.Module, cfg: ModelConfig, provenance: dict[str, Any], *, half: bool = False
) -> None:
    """Write the shareable generator: weights, model config and provenance in safetensors metadata.

    Identical weights, config and provenance give identical bytes (so the file's sha256 names the
    model, not the write): every JSON text is written with sorted keys and nothing depends on time.
    half: store the floating-point tensors as float16 (half the size; `load_generator` makes them float32 again).
    """
    tensors = {k: v.detach().cpu().contiguous() for k, v in G.state_dict().items()}
    if half:
        tensors = {k: v.half() if v.is_floating_point() else v for k, v in tensors.items()}
    metadata = {
        "format": GENERATOR_FORMAT,
        "format_version": GENERATOR_FORMAT_VERSION,
        "ganforge_version": __version__,
        "model_config": json.dumps(asdict(cfg), sort_keys=True),
        "provenance": json.dumps(provenance, sort_keys=True),
    }
    if half:
        metadata["storage_dtype"] = "float16"
    data = _sorted_header(safetensors_bytes(tensors, metadata=metadata))
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)  # into the file atomic_path made, so it keeps the umask's mode


def _sorted_header(data: bytes) -> bytes:
    """safetensors bytes with the JSON header's keys sorted.

    The library writes the metadata from a hash map, whose order changes from process to process.
    Layout: 8-byte little-endian header length, JSON header padded with spaces to a multiple of 8,
    then the tensor bytes, whose offsets count from the end of the header and so stay valid.
    """
    size = int.from_bytes(data[:8], "little")
    header = json.loads(data[8 : 8 + size])
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return len(text).to_bytes(8, "little") + text + data[8 + size :]


def resolve_generator_path(path: str | Path) -> Path:
    """A run directory, a generator file or `pretrained:NAME` (shipped in the package) -> the generator file's path."""
    if pretrained.is_spec(path):
        return pretrained.resolve(str(path))
    path = Path(path)
    if path.is_dir():
        path = path / GENERATOR_FILE
    if not path.is_file():
        raise CheckpointError(
            f"no generator file at {path}; pass a run directory, a {GENERATOR_FILE} file or pretrained:NAME "
            "(`ganforge pretrained list` shows them)"
        )
    return path


def file_sha256(path: str | Path) -> str:
    return file_digest(path, "sha256")


def read_generator_metadata(path: str | Path) -> dict[str, str]:
    """The safetensors metadata of a generator file, checked to be ganforge's."""
    path = resolve_generator_path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except (SafetensorError, OSError, ValueError) as e:
        raise CheckpointError(
            f"{path} is truncated or not a safetensors file ({e}); pass a generator.safetensors that ganforge wrote"
        ) from e
    if metadata.get("format") != GENERATOR_FORMAT:
        raise CheckpointError(f"{path} is a safetensors file but not a ganforge generator; pass one ganforge wrote")
    if metadata.get("format_version") != GENERATOR_FORMAT_VERSION:
        raise CheckpointError(
            f"{path} has generator format {metadata.get('format_version')!r}, this ganforge reads "
            f"{GENERATOR_FORMAT_VERSION}; use the ganforge version that wrote it"
        )
    return metadata


def load_generator(path: str | Path, *, device: str | torch.device = "cpu") -> Generator:
    """Load a generator file (or a run directory's) into an eval-mode G.

    Besides its `cfg` (ModelConfig), the module carries the file's `provenance` (dict) and `sha256`.

    Example:
        >>> G = ganforge.load_generator("runs/seed")
        >>> images = ganforge.sample(G, 25, seed=0)
    """
    path = resolve_generator_path(path)
    metadata = read_generator_metadata(path)
    try:
        cfg = model_config_from_dict(json.loads(metadata["model_config"]))
        provenance = json.loads(metadata.get("provenance", "{}"))
    except (KeyError, json.JSONDecodeError, TypeError, ConfigError) as e:
        raise CheckpointError(f"{path} has an unreadable model config ({e}); regenerate the file with ganforge") from e
    G = build_generator(cfg)
    try:
        with safe_open(str(path), framework="pt") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
        G.load_state_dict(state, strict=True)
    except (SafetensorError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} does not fit its model config ({str(e).splitlines()[0]}); the file is damaged or incompatible"
        ) from e
    G.provenance = provenance
    G.sha256 = file_sha256(path)
    return G.to(device).eval()
