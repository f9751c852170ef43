"""Class conditioning shared by the architectures: one-hot inputs for G, a projection head for D."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.config import ModelConfig


def with_labels(z: Tensor, labels: Tensor | None, cfg: ModelConfig) -> Tensor:
    """Append a one-hot class code to z for a conditional G: (B, z_dim) -> (B, z_dim + classes)."""
    if not cfg.is_conditional:
        return z
    if labels is None:
        raise ValueError("a conditional generator needs labels")
    return torch.cat([z, F.one_hot(labels, cfg.num_classes).to(z.dtype)], dim=1)


class Projection(nn.Module):
    """Projection discriminator head (Miyato & Koyama 2018): logit + <embed(y), features>."""

    def __init__(self, num_classes: int, features: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(num_classes, features)
        nn.init.normal_(self.embed.weight, 0.0, 0.02)

    def forward(self, features: Tensor, labels: Tensor) -> Tensor:
        return (self.embed(labels) * features).sum(dim=1)
