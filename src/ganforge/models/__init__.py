"""Generator and discriminator networks, built from a ModelConfig."""

from __future__ import annotations

from torch import nn

from ganforge.config import ModelConfig
from ganforge.models.base import Generator
from ganforge.models.dcgan import DCGANDiscriminator, DCGANGenerator
from ganforge.models.mlp import MLPDiscriminator, MLPGenerator


def build_generator(cfg: ModelConfig) -> Generator:
    """G: (z (B, z_dim), labels (B,) or None) -> images (B, C, H, W)."""
    return MLPGenerator(cfg) if cfg.arch == "mlp" else DCGANGenerator(cfg)


def build_discriminator(cfg: ModelConfig) -> nn.Module:
    """D: (images (B, C, H, W), labels (B,) or None) -> logits (B,)."""
    return MLPDiscriminator(cfg) if cfg.arch == "mlp" else DCGANDiscriminator(cfg)


__all__ = ["Generator", "build_discriminator", "build_generator"]
