"""Device choice: auto picks CUDA when present; nothing else changes for a GPU user."""

from __future__ import annotations

import torch

from ganforge.errors import ConfigError


def resolve_device(name: str | None) -> torch.device:
    """auto -> cuda when available, else cpu; cuda without a GPU is a user error."""
    name = name or "auto"
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available; use --device cpu or auto")
    if name not in ("cpu", "cuda"):
        raise ConfigError(f"unknown device {name!r}; use auto, cpu or cuda")
    return torch.device(name)
