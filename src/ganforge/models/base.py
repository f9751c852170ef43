"""Base classes: a generator that knows its config and provenance, a discriminator with its output head."""

from __future__ import annotations

from typing import Any

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.conditioning import Projection


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


class Discriminator(nn.Module):
    """D: (images (B, C, H, W), labels (B,) or None) -> logits (B,), or (B, 1 + classes) for AC-GAN.

    Subclasses build their feature extractor, then call `add_head(features)`, and end their forward
    with `self.logits(h, labels)`.
    """

    head: nn.Linear
    projection: Projection | None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg

    def add_head(self, features: int) -> None:
        """The output layer: one logit, plus a projection term or (AC-GAN) one logit per class."""
        cfg = self.cfg
        self.head = nn.Linear(features, 1 + cfg.num_classes if cfg.is_acgan else 1)
        self.projection = Projection(cfg.num_classes, features) if cfg.is_conditional and not cfg.is_acgan else None

    def logits(self, h: Tensor, labels: Tensor | None) -> Tensor:
        """h (B, features) -> (B,); AC-GAN: (B, 1 + classes), column 0 the adversarial logit. AC-GAN ignores labels."""
        out = self.head(h)
        if self.cfg.is_acgan:
            return out
        out = out.squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            out = out + self.projection(h, labels)
        return out
