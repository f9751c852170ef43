"""The article's multilayer perceptron GAN: two hidden ReLU layers in each network."""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Discriminator, Generator
from ganforge.models.conditioning import with_labels
from ganforge.models.layers import MinibatchStd


class MLPGenerator(Generator):
    """z (+ one-hot class) -> width (ReLU) -> width (ReLU) -> C*H*W (tanh), reshaped to (C, H, W)."""

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


class MLPDiscriminator(Discriminator):
    """C*H*W -> d_width (ReLU) [+ minibatch std] -> d_width (ReLU) -> logit (no sigmoid: the losses take logits)."""

    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        width = cfg.disc_width
        std: list[nn.Module] = [MinibatchStd()] if cfg.minibatch_std else []
        self.body = nn.Sequential(
            nn.Linear(self.in_channels * cfg.image_size**2, width),
            nn.ReLU(),
            *std,
            nn.Linear(width + len(std), width),
            nn.ReLU(),
        )
        self.add_head(width)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.pack(x)
        return self.logits(self.body(x.flatten(1)), labels, x)  # body: (B / pac, d_width)
