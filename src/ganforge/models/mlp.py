"""The article's multilayer perceptron GAN: two hidden ReLU layers in each network."""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Generator
from ganforge.models.conditioning import Projection, with_labels


class MLPGenerator(Generator):
    """z -> width (ReLU) -> width (ReLU) -> C*H*W (tanh), reshaped to (C, H, W)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        out = cfg.channels * cfg.image_size**2
        self.net = nn.Sequential(
            nn.Linear(cfg.z_dim + cfg.num_classes, cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, out),
        )
        if cfg.out_activation == "tanh":
            self.net.append(nn.Tanh())

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        return self.net(with_labels(z, labels, self.cfg)).view(-1, *self.cfg.shape)


class MLPDiscriminator(nn.Module):
    """C*H*W -> width (ReLU) -> width (ReLU) -> 1 logit (no sigmoid: the losses take logits)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.body = nn.Sequential(
            nn.Linear(cfg.channels * cfg.image_size**2, cfg.width),
            nn.ReLU(),
            nn.Linear(cfg.width, cfg.width),
            nn.ReLU(),
        )
        self.head = nn.Linear(cfg.width, 1)
        self.projection = Projection(cfg.num_classes, cfg.width) if cfg.is_conditional else None

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.body(x.flatten(1))  # (B, width)
        logits = self.head(h).squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            logits = logits + self.projection(h, labels)
        return logits
