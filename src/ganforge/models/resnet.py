"""ResNet G and D in the style of SNGAN (Miyato et al. 2018) for 28x28 images and powers of two from 32 to 256.

G: linear to (channels, s, s), up-sampling residual blocks (BatchNorm, ReLU, nearest 2x, 3x3 convs), then
BatchNorm, ReLU, a 3x3 conv and tanh. D: an "optimized" first block, down-sampling residual blocks, one
block at the final size, ReLU, global sum pooling and a linear logit; D has no BatchNorm. At equal width
the channels at each resolution are DCGAN's (28x28: G 2w at 7x7, w at 14x14, w/2 at 28x28; D the mirror
image), which keeps the 3x3 convs at full resolution thin enough for a CPU. Beyond 64 px the top stays at
8 x width and each added block halves again, to a floor of min(width / 2, 16) channels.
"""

from __future__ import annotations

import math

import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.config import ModelConfig
from ganforge.models.base import Discriminator, Generator
from ganforge.models.conditioning import batch_norm, normalize, require_labels
from ganforge.models.dcgan import WIDTH_FLOOR, layout
from ganforge.models.layers import MinibatchStd


def channels(width: int, n_blocks: int) -> list[int]:
    """G's channels from the start size up to the image size, halving each block: [2w, w, w/2] for 28x28.

    [8w, 4w, 2w, w, w/2] at 64 px; at 128 and 256 px the top stays 8w and the halving stops at the floor.
    """
    top = width * 2 ** min(n_blocks - 1, 3)
    floor = max(1, min(width // 2, WIDTH_FLOOR))  # up to 64 px the finest level is width // 2, never below it
    return [max(floor, top // 2**i) for i in range(n_blocks + 1)]


def _conv(c_in: int, c_out: int, kernel: int, gain: float = 1.0) -> nn.Conv2d:
    # SNGAN's init: Xavier-uniform, with gain sqrt(2) on the residual path's convs (they feed ReLUs).
    conv = nn.Conv2d(c_in, c_out, kernel, 1, kernel // 2)
    nn.init.xavier_uniform_(conv.weight, gain)
    nn.init.zeros_(conv.bias)  # type: ignore[arg-type]  # bias=True above
    return conv


class UpBlock(nn.Module):
    """x -> BN, ReLU, 2x up, conv3 -> BN, ReLU, conv3; plus 2x up, conv1 of x."""

    def __init__(self, c_in: int, c_out: int, cfg: ModelConfig) -> None:
        super().__init__()
        self.bn1 = batch_norm(c_in, cfg)
        self.conv1 = _conv(c_in, c_out, 3, math.sqrt(2))
        self.bn2 = batch_norm(c_out, cfg)
        self.conv2 = _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1)

    def forward(self, x: Tensor, labels: Tensor | None) -> Tensor:
        h = F.interpolate(F.relu(normalize(self.bn1, x, labels)), scale_factor=2.0, mode="nearest")
        h = self.conv2(F.relu(normalize(self.bn2, self.conv1(h), labels)))
        return h + self.shortcut(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class DownBlock(nn.Module):
    """x -> ReLU, conv3, ReLU, conv3 [, 2x avg-pool]; plus conv1 [, pool] of x when the shape changes.

    first: SNGAN's optimized block for the image input: no leading ReLU, and the shortcut pools first.
    """

    def __init__(self, c_in: int, c_out: int, *, down: bool, first: bool = False) -> None:
        super().__init__()
        self.down, self.first = down, first
        self.conv1 = _conv(c_in, c_out, 3, math.sqrt(2))
        self.conv2 = _conv(c_out, c_out, 3, math.sqrt(2))
        self.shortcut = _conv(c_in, c_out, 1) if (c_in != c_out or down or first) else None

    def forward(self, x: Tensor) -> Tensor:
        h = self.conv2(F.relu(self.conv1(x if self.first else F.relu(x))))
        if self.down:
            h = F.avg_pool2d(h, 2)
        skip = x
        if self.first:
            skip = F.avg_pool2d(skip, 2)  # pooling before the 1x1 conv is the same function, 4x cheaper
        if self.shortcut is not None:
            skip = self.shortcut(skip)
        if self.down and not self.first:
            skip = F.avg_pool2d(skip, 2)
        return h + skip


class ResNetGenerator(Generator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        self.start, n_up = layout(cfg.image_size)
        ch = channels(cfg.width, n_up)
        self.linear = nn.Linear(cfg.z_dim, ch[0] * self.start**2)
        nn.init.xavier_uniform_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)
        self.blocks = nn.ModuleList(UpBlock(ch[i], ch[i + 1], cfg) for i in range(n_up))
        self.bn = nn.BatchNorm2d(ch[-1])
        self.conv = _conv(ch[-1], cfg.channels, 3)

    def forward(self, z: Tensor, labels: Tensor | None = None) -> Tensor:
        labels = require_labels(labels, self.cfg, "generator")
        h = self.linear(z).view(z.size(0), -1, self.start, self.start)
        for block in self.blocks:
            h = block(h, labels)
        x = self.conv(F.relu(self.bn(h)))
        return x.tanh() if self.cfg.out_activation == "tanh" else x  # (B, C, H, W)


class ResNetDiscriminator(Discriminator):
    def __init__(self, cfg: ModelConfig) -> None:
        super().__init__(cfg)
        _, n_down = layout(cfg.image_size)
        ch = channels(cfg.disc_width, n_down)[::-1]  # 28x28: w/2 at 28x28 (pooled to 14x14), w, then 2w at 7x7
        blocks = [DownBlock(self.in_channels, ch[0], down=True, first=True)]
        blocks += [DownBlock(ch[i - 1], ch[i], down=True) for i in range(1, n_down)]
        self.std = MinibatchStd() if cfg.minibatch_std else None  # before the last block, so D can use it
        blocks.append(DownBlock(ch[-2] + int(cfg.minibatch_std), ch[-1], down=False))
        self.blocks = nn.ModuleList(blocks)
        self.add_head(ch[-1])
        nn.init.xavier_uniform_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: Tensor, labels: Tensor | None = None) -> Tensor:
        x = h = self.pack(x)
        for block in self.blocks[:-1]:
            h = block(h)
        if self.std is not None:
            h = self.std(h)
        h = F.relu(self.blocks[-1](h)).sum(dim=(2, 3))  # global sum pooling: (B, channels)
        return self.logits(h, labels, x)
