"""Device choice: auto picks CUDA when present; nothing else changes for a GPU user."""

from __future__ import annotations

import re

import torch

from ganforge.errors import ConfigError


def resolve_device(name: str | None) -> torch.device:
    """auto -> cuda when available, else cpu; cpu; cuda or cuda:N, which must exist on this machine."""
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cpu":
        return torch.device("cpu")
    match = re.fullmatch(r"cuda(?::(\d+))?", name)
    if match is None:
        raise ConfigError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N")
    if not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} was asked for but no CUDA GPU is available; use --device cpu or auto")
    if match.group(1) is None:
        return torch.device("cuda")
    index, count = int(match.group(1)), torch.cuda.device_count()
    if index >= count:
        raise ConfigError(
            f"device {name!r} was asked for but this machine has {count} CUDA GPU{'s' if count != 1 else ''} "
            f"(cuda:0..cuda:{count - 1}); pick one of those or use --device cuda"
        )
    return torch.device("cuda", index)
