"""Class conditioning shared by the architectures: one-hot inputs or conditional BatchNorm for G, heads for D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.config import ModelConfig


def require_labels(labels: Tensor | None, cfg: ModelConfig, who: str) -> Tensor | None:
    """labels for a conditional network (an error when missing), None for an unconditional one."""
    if not cfg.is_conditional:
        return None
    if labels is None:
        raise ValueError(f"a conditional {who} needs labels")
    return labels


def with_labels(z: Tensor, labels: Tensor | None, cfg: ModelConfig) -> Tensor:
    """Append a one-hot class code to z for a conditional G: (B, z_dim) -> (B, z_dim + classes)."""
    labels = require_labels(labels, cfg, "generator")
    if labels is None:
        return z
    return torch.cat([z, F.one_hot(labels, cfg.num_classes).to(z.dtype)], dim=1)


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm whose gain and bias are looked up per class (de Vries et al. 2017; SNGAN's conditional G)."""

    def __init__(self, features: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm2d(features, affine=False)
        self.gain = nn.Embedding(num_classes, features)
        self.bias = nn.Embedding(num_classes, features)
        nn.init.ones_(self.gain.weight)  # every class starts as plain BatchNorm
        nn.init.zeros_(self.bias.weight)

    def forward(self, x: Tensor, labels: Tensor) -> Tensor:
        return self.bn(x) * self.gain(labels)[:, :, None, None] + self.bias(labels)[:, :, None, None]


def batch_norm(features: int, cfg: ModelConfig) -> nn.Module:
    """G's normalization: class-conditional for a conditional model, else plain BatchNorm."""
    return ConditionalBatchNorm2d(features, cfg.num_classes) if cfg.is_conditional else nn.BatchNorm2d(features)


def normalize(layer: nn.Module, x: Tensor, labels: Tensor | None) -> Tensor:
    """Apply a layer, handing it the labels when it is conditional."""
    if isinstance(layer, ConditionalBatchNorm2d):
        assert labels is not None, "require_labels checks this at the top of G"
        return layer(x, labels)
    return layer(x)


class LabelledSequential(nn.Sequential):
    """nn.Sequential that passes the labels to its conditional BatchNorm layers (same state_dict keys)."""

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        for layer in self:
            x = normalize(layer, x, labels)
        return x


class Projection(nn.Module):
    """Projection discriminator head (Miyato & Koyama 2018): logit + <embed(y), features>."""

    def __init__(self, num_classes: int, features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        return (self.embed(labels) * features).sum(dim=1)
