"""DCGAN (Radford et al. 2016) for 28x28, 32x32 and 64x64 images.

G: transposed convolutions with BatchNorm (class-conditional for a conditional G) and ReLU, tanh
output. D: strided convolutions with LeakyReLU(0.2), BatchNorm after the first layer, a linear
logit. With spectral normalization D has no BatchNorm: SN bounds D's Lipschitz constant, which
BatchNorm would undo (Miyato et al. 2018 use none). Weights start from N(0, 0.02).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Discriminator, Generator
from ganforge.models.conditioning import ConditionalBatchNorm2d, LabelledSequential, batch_norm, require_labels
from ganforge.models.layers import MinibatchStd


def layout(image_size: int) -> tuple[int, int]:
    """(start size, number of 2x upsamplings): 28 = 7 * 2^2, 32 = 4 * 2^3, 64 = 4 * 2^4."""
    return (7, 2) if image_size == 28 else (4, {32: 3, 64: 4}[image_size])


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, 0.02)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, ConditionalBatchNorm2d):  # each class's gains like a BatchNorm's
            nn.init.normal_(m.gain.weight, 1.0, 0.02)


class DCGANGenerator(Generator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        start, n_up = layout(cfg.image_size)
        ch = cfg.width * 2 ** (n_up - 1)
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim, ch, start, 1, 0, bias=False),
            batch_norm(ch, cfg),
            nn.ReLU(),
        ]
        for _ in range(n_up - 1):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 4, 2, 1, bias=False), batch_norm(ch // 2, cfg), nn.ReLU()]
            ch //= 2
        layers.append(nn.ConvTranspose2d(ch, cfg.channels, 4, 2, 1))
        if cfg.out_activation == "tanh":
            layers.append(nn.Tanh())
        self.net = LabelledSequential(*layers)
        _init_weights(self)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = require_labels(labels, self.cfg, "generator")
        return self.net(z[:, :, None, None], labels)  # (B, C, H, W)


class DCGANDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        start, n_up = layout(cfg.image_size)
        ch = cfg.disc_width
        use_bn = not cfg.spectral_norm
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, ch, 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(n_up - 1):
            extra = 0
            if cfg.minibatch_std and i == n_up - 2:  # before the last conv, so D can use it nonlinearly
                layers.append(MinibatchStd())
                extra = 1
            layers.append(nn.Conv2d(ch + extra, ch * 2, 4, 2, 1, bias=not use_bn))
            layers += [nn.BatchNorm2d(ch * 2), nn.LeakyReLU(0.2)] if use_bn else [nn.LeakyReLU(0.2)]
            ch *= 2
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.add_head(ch * start * start)
        _init_weights(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.pack(x)
        return self.logits(self.body(x), labels, x)  # body: (B / pac, features)
