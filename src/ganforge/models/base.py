"""The generator base class: a module that knows its config and, once loaded, its provenance."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ganforge.config import ModelConfig


class Generator(nn.Module):
    """G: (z (B, z_dim), labels (B,) or None) -> images (B, C, H, W)."""

    cfg: ModelConfig
    provenance: dict[str, Any]  # set by load_generator
    sha256: str  # of the generator file, set by load_generator

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.provenance = {}
        self.sha256 = "unsaved"

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        raise NotImplementedError
