"""DCGAN (Radford et al. 2016) for 28x28, 32x32 and 64x64 images.

G: transposed convolutions with BatchNorm and ReLU, tanh output. D: strided convolutions with
LeakyReLU(0.2), BatchNorm after the first layer, a linear logit. Weights start from N(0, 0.02).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Generator
from ganforge.models.conditioning import Projection, with_labels


def _layout(image_size: int) -> tuple[int, int]:
    """(start size, number of 2x upsamplings): 28 = 7 * 2^2, 32 = 4 * 2^3, 64 = 4 * 2^4."""
    return (7, 2) if image_size == 28 else (4, {32: 3, 64: 4}[image_size])


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


class DCGANGenerator(Generator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        start, n_up = _layout(cfg.image_size)
        ch = cfg.width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim + cfg.num_classes, ch, start, 1, 0, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(),
        ]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch // 2), nn.ReLU()]
            ch //= 2
        layers.append(nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1))
        if cfg.out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)
        _init_weights(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        z = with_labels(z, labels, self.cfg)
        return self.net(z[:, :, None, None])  # (B, C, H, W)


class DCGANDiscriminator(nn.Module):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__()
        self.cfg = cfg
        start, n_up = _layout(cfg.image_size)
        ch = cfg.width
        layers: list[nn.Module] = [nn.Conv2d(cfg.channels, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        for _ in range(n_up - 1):
            layers += [nn.Conv2d(ch, ch * 2, 4, 2, 1, bias=False), nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)]
            ch *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        features = ch * start * start
        self.head = nn.Linear(features, 1)
        self.projection = Projection(cfg.num_classes, features) if cfg.is_conditional else None
        _init_weights(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        h = self.body(x)  # (B, features)
        logits = self.head(h).squeeze(1)
        if self.projection is not None:
            if labels is None:
                raise ValueError("a conditional discriminator needs labels")
            logits = logits + self.projection(h, labels)
        return logits
