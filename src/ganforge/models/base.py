"""Base classes: a generator that knows its config and provenance, a discriminator with its output head."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.conditioning import Projection
from ganforge.models.layers import CoarseCritic


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

    Subclasses build their feature extractor on `in_channels` inputs, start their forward with
    `x = self.pack(x)`, call `add_head(features)`, and end their forward with `self.logits(h, labels, x)`.
    With packing (cfg.pac = k > 1) D returns one logit per pack of k samples: (B / k,). With a coarse
    critic (cfg.coarse_d) D returns (B, 2): the main logit, then the coarse critic's, each its own loss term.
    """

    head: nn.Linear
    projection: Projection | None
    coarse: CoarseCritic | None

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg

    @property
    def in_channels(self) -> int:
        """Channels of D's input: the images' channels times the samples packed together."""
        return self.cfg.channels * self.cfg.pac

    def pack(self, x: Tensor) -> Tensor:
        """PacGAN (Lin et al. 2018): (B, C, ...) -> (B / k, k * C, ...), samples k*j .. k*j + k - 1 in pack j.

        A pack drawn from a collapsed G holds near-copies, which a pack of real data rarely does; judging k
        samples at once lets D see that, as minibatch std does through one statistic. k = 1: x as is.
        """
        k = self.cfg.pac
        if k == 1:
            return x
        if x.size(0) % k:
            raise ValueError(f"a batch of {x.size(0)} does not divide into packs of {k}")
        return x.reshape(x.size(0) // k, k * x.size(1), *x.shape[2:])

    def add_head(self, features: int) -> None:
        """The output layer: one logit, plus a projection term or (AC-GAN) one logit per class."""
        cfg = self.cfg
        self.head = nn.Linear(features, 1 + cfg.num_classes if cfg.is_acgan else 1)
        self.projection = Projection(cfg.num_classes, features) if cfg.is_conditional and not cfg.is_acgan else None
        self.coarse = CoarseCritic(self.in_channels, cfg.coarse_d) if cfg.coarse_d else None

    def logits(self, h: Tensor, labels: Tensor | None, x: Tensor | None = None) -> Tensor:
        """h (B, features) -> (B,); AC-GAN: (B, 1 + classes), column 0 the adversarial logit. AC-GAN ignores labels.

        x: D's (packed) input, which the coarse critic judges: then (B, 2), the main logit and the coarse one.
        """
        out = self.head(h)
        if self.cfg.is_acgan:
            return out
        out = out.squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            out = out + self.projection(h, labels)
        if self.coarse is not None:
            if x is None:
                raise ValueError("a discriminator with a coarse critic needs its input: call logits(h, labels, x)")
            out = torch.stack([out, self.coarse(x).to(out.dtype)], dim=1)
        return out
