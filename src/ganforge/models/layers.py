"""Layers that stabilize D: the minibatch standard deviation feature, the coarse critic, spectral normalization."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.utils.parametrizations import spectral_norm


class MinibatchStd(nn.Module):
    """Append the batch's feature spread as one more feature (Karras et al. 2018, "Progressive GANs").

    Samples are split into contiguous groups of `group_size` (the whole batch when it does not divide
    evenly); each sample gets the mean over features of its group's per-feature std. A collapsed G
    makes this number small, which D can see. (B, F) -> (B, F + 1); (B, C, H, W) -> (B, C + 1, H, W).
    """

    def __init__(self, group_size: int = 4) -> None:
        super().__init__()
        self.group_size = group_size

    def forward(self, x: Tensor) -> Tensor:
        batch = x.size(0)
        group = min(self.group_size, batch)
        if batch % group:
            group = batch
        grouped = x.reshape(batch // group, group, -1).float()  # (groups, group, features); fp16 would lose the 1e-8
        # The variance written out: Tensor.var over the group dim ran 5-10x slower on CPU (torch 2.13: stacked-mnist
        # trained at 9.0 steps/s with it, 19.5 without; toy-grid's D step 1.1 ms against 0.2 ms).
        centred = grouped - grouped.mean(dim=1, keepdim=True)
        std = (centred.square().mean(dim=1) + 1e-8).sqrt().mean(dim=1)  # (groups,)
        feature = std.repeat_interleave(group).to(x.dtype)  # (B,)
        shape = (batch, 1, *x.shape[2:])
        return torch.cat([x, feature.view(-1, *[1] * (x.dim() - 1)).expand(shape)], dim=1)


class CoarseCritic(nn.Module):
    """A second real/fake logit from the image average-pooled to side x side pixels: an MLP of `width` units.

    At 7x7 a digit's identity survives and its strokes do not, so this critic cannot tell a sample by the
    fine flaws the main D keys on; what it can tell is which shapes G draws too often or too rarely. D
    returns its logit beside the main one and the loss scores each on its own, so its push on G does not
    fade when the main D is confident (summed into one logit it did: Stacked MNIST KL 0.125 against 0.092 at
    4,000 steps, README). A multi-scale D (Wang et al. 2018, pix2pixHD) whose coarsest scale is an MLP.
    (B, C, H, W) -> (B,).
    """

    def __init__(self, channels: int, side: int, width: int = 256) -> None:
        super().__init__()
        self.side = side
        self.net = nn.Sequential(
            nn.Flatten(),
            nn.Linear(channels * side * side, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, width),
            nn.LeakyReLU(0.2),
            nn.Linear(width, 1),
        )
        for m in self.net:
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, 0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.net(F.adaptive_avg_pool2d(x, self.side)).squeeze(1)


def apply_spectral_norm(module: nn.Module, *, embeddings: bool) -> None:
    """Spectrally normalize every conv and linear layer of `module` in place (Miyato et al. 2018).

    torch's parametrization keeps the power-iteration vectors `_u`, `_v` as buffers, so they are in the
    state_dict and resume stays exact. `embeddings`: also the projection head's class embedding (as SNGAN's
    projection D does); G's conditional BatchNorm gains are left alone.
    """
    kinds: tuple[type[nn.Module], ...] = (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)
    if embeddings:
        kinds += (nn.Embedding,)
    for layer in list(module.modules()):  # a list: registering a parametrization adds submodules
        if isinstance(layer, kinds):
            spectral_norm(layer)
