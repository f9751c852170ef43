"""DCGAN (Radford et al. 2016) for 28x28 images and every power of two from 32x32 to 256x256.

G: transposed convolutions with BatchNorm (class-conditional for a conditional G) and ReLU, tanh
output. D: strided convolutions with LeakyReLU(0.2), BatchNorm after the first layer, a linear
logit. With spectral normalization D has no BatchNorm: SN bounds D's Lipschitz constant, which
BatchNorm would undo (Miyato et al. 2018 use none). Weights start from N(0, 0.02).

G gains a block per doubling of the image size, D loses one. G's widths halve as the resolution doubles, from
8 x width at 4x4 down to width at 32x32 (64 px); beyond 64 px they go on halving to a floor of min(width, 16),
which keeps the full-resolution layers of a 128 or 256 px model cheap enough for a CPU (DCGAN's 64 px widths
are exactly these; D mirrors G).
"""

from __future__ import annotations

from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Discriminator, Generator
from ganforge.models.conditioning import ConditionalBatchNorm2d, LabelledSequential, batch_norm, require_labels
from ganforge.models.layers import MinibatchStd

WIDTH_FLOOR = 16  # the fewest channels a level gets when halving would go below it (and below width)


def layout(image_size: int) -> tuple[int, int]:
    """(start size, number of 2x upsamplings): 28 = 7 * 2^2, 32 = 4 * 2^3, 64 = 4 * 2^4 ... 256 = 4 * 2^6."""
    if image_size == 28:
        return (7, 2)
    n_up = image_size.bit_length() - 3
    if image_size < 32 or image_size != 4 * 2**n_up:
        raise ValueError(f"no conv layout for image_size {image_size}: 28 or a power of two from 32 to 256")
    return (4, n_up)


def level_widths(width: int, levels: int, floor: int) -> list[int]:
    """Channels at each of `levels` resolutions, coarsest first: halving from width * 2^min(levels - 1, 3).

    Up to 64 px (4 levels) the finest gets `width`; beyond, the top stays at 8 x width (its 64 px value)
    and the halving goes on, never below `floor`. [8w, 4w, 2w, w] at 64 px, [8w, 4w, 2w, w, w/2] at 128.
    """
    top = width * 2 ** min(levels - 1, 3)
    return [max(floor, top // 2**i) for i in range(levels)]


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
        widths = level_widths(cfg.width, n_up, min(cfg.width, WIDTH_FLOOR))  # at start, 2 start, ... size / 2
        layers: list[nn.Module] = [
            nn.ConvTranspose2d(cfg.z_dim, widths[0], start, 1, 0, bias=False),
            batch_norm(widths[0], cfg),
            nn.ReLU(),
        ]
        for c_in, c_out in zip(widths[:-1], widths[1:], strict=True):
            layers += [nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False), batch_norm(c_out, cfg), nn.ReLU()]
        layers.append(nn.ConvTranspose2d(widths[-1], cfg.channels, 4, 2, 1))
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
        widths = level_widths(cfg.disc_width, n_up, min(cfg.disc_width, WIDTH_FLOOR))[::-1]  # G's, mirrored
        use_bn = not cfg.spectral_norm
        layers: list[nn.Module] = [nn.Conv2d(self.in_channels, widths[0], 4, 2, 1), nn.LeakyReLU(0.2)]
        for i in range(n_up - 1):
            extra = 0
            if cfg.minibatch_std and i == n_up - 2:  # before the last conv, so D can use it nonlinearly
                layers.append(MinibatchStd())
                extra = 1
            c_out = widths[i + 1]
            layers.append(nn.Conv2d(widths[i] + extra, c_out, 4, 2, 1, bias=not use_bn))
            layers += [nn.BatchNorm2d(c_out), nn.LeakyReLU(0.2)] if use_bn else [nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers, nn.Flatten())
        self.add_head(widths[-1] * start * start)
        _init_weights(self)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = self.pack(x)
        return self.logits(self.body(x), labels, x)  # body: (B / pac, features)
