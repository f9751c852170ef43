"""Differentiable augmentation of D's inputs: DiffAugment (Zhao et al. 2020) and adaptive ADA (Karras et al. 2020).

D sees real and fake images through the same random transforms, and G's gradient flows back through
them, so D cannot overfit a small dataset without the augmentations leaking into G's samples. All
randomness comes from a passed torch.Generator on the images' device, so a resumed run draws the
same transforms. Every function is vectorized over the batch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

DIFFAUGMENT_POLICY = ("color", "translation", "cutout")  # the paper's order: the cutout hole stays exactly 0


def _uniform(x: Tensor, rng: torch.Generator) -> Tensor:
    """One U[0, 1) draw per sample, shaped (B, 1, 1, 1) to broadcast over an image."""
    return torch.rand(x.size(0), 1, 1, 1, generator=rng, device=x.device)


def _normal(x: Tensor, rng: torch.Generator) -> Tensor:
    return torch.randn(x.size(0), 1, 1, 1, generator=rng, device=x.device)


def _gather_pixels(x: Tensor, index: Tensor) -> Tensor:
    """out[b, c, i, j] = x[b, c].flatten()[index[b, i, j]]: every channel moves the same way. index: (B, H, W)."""
    B, C, H, W = x.shape
    index = index.expand(B, H, W).reshape(B, 1, H * W).expand(B, C, H * W)
    return x.reshape(B, C, H * W).gather(2, index).view(B, C, H, W)


def _cutout_mask(x: Tensor, rng: torch.Generator, size: Tensor) -> Tensor:
    """(B, 1, H, W): 0 inside a square of side `size` (B,) centred on a uniform random pixel, 1 elsewhere."""
    B, _, H, W = x.shape
    cy = torch.randint(0, H, (B, 1), generator=rng, device=x.device)
    cx = torch.randint(0, W, (B, 1), generator=rng, device=x.device)
    top, left, size = cy - size.view(B, 1) // 2, cx - size.view(B, 1) // 2, size.view(B, 1)
    i = torch.arange(H, device=x.device)
    j = torch.arange(W, device=x.device)
    inside_rows = (i >= top) & (i < top + size)  # (B, H)
    inside_cols = (j >= left) & (j < left + size)  # (B, W)
    return (~(inside_rows[:, :, None] & inside_cols[:, None, :]))[:, None].to(x.dtype)


def _scale_about(x: Tensor, centre: Tensor, factor: Tensor) -> Tensor:
    """centre + factor * (x - centre), written so that factor 1 returns x bit for bit (and with fewer full-size ops)."""
    factor = factor.to(x.dtype)
    return x * factor + centre * (1 - factor)


def _color(x: Tensor, rng: torch.Generator) -> Tensor:
    """DiffAugment's colour: brightness + U[-0.5, 0.5), saturation x U[0, 2) (RGB only), contrast x U[0.5, 1.5)."""
    x = x + (_uniform(x, rng) - 0.5).to(x.dtype)
    if x.size(1) == 3:  # saturation scales each pixel's distance from its grey value: none for grey images
        x = _scale_about(x, x.mean(dim=1, keepdim=True), _uniform(x, rng) * 2)
    return _scale_about(x, x.mean(dim=(1, 2, 3), keepdim=True), _uniform(x, rng) + 0.5)


def _translation(x: Tensor, rng: torch.Generator, ratio: float = 0.125) -> Tensor:
    """Shift each image by up to ratio * size pixels in x and y, filling with zeros."""
    B, _, H, W = x.shape
    sy, sx = int(H * ratio + 0.5), int(W * ratio + 0.5)
    dy = torch.randint(-sy, sy + 1, (B, 1), generator=rng, device=x.device)
    dx = torch.randint(-sx, sx + 1, (B, 1), generator=rng, device=x.device)
    rows = torch.arange(H, device=x.device) - dy  # (B, H): the source row of each output row
    cols = torch.arange(W, device=x.device) - dx  # (B, W)
    valid = ((rows >= 0) & (rows < H))[:, :, None] & ((cols >= 0) & (cols < W))[:, None, :]  # (B, H, W)
    shifted = _gather_pixels(x, rows.clamp(0, H - 1)[:, :, None] * W + cols.clamp(0, W - 1)[:, None, :])
    return shifted * valid[:, None].to(x.dtype)


def _cutout(x: Tensor, rng: torch.Generator, ratio: float = 0.5) -> Tensor:
    """Zero a square of half the image's side at a random place (it may hang over the edge)."""
    size = torch.full((x.size(0),), int(min(x.shape[2:]) * ratio + 0.5), device=x.device)
    return x * _cutout_mask(x, rng, size)


_DIFFAUGMENT_OPS: dict[str, Callable[[Tensor, torch.Generator], Tensor]] = {
    "color": _color,
    "translation": _translation,
    "cutout": _cutout,
}


def diff_augment(x: Tensor, rng: torch.Generator, *, policy: Sequence[str] = DIFFAUGMENT_POLICY) -> Tensor:
    """DiffAugment (Zhao et al. 2020): the policy's transforms in order, fresh per sample. x: (B, C, H, W) in [-1, 1].

    color: brightness, saturation and contrast for RGB; brightness and contrast for grey images.
    translation: by up to 1/8 of the size, zero padding. cutout: a square of half the size set to 0.
    """
    for name in policy:
        if name not in _DIFFAUGMENT_OPS:
            raise ValueError(f"unknown DiffAugment transform {name!r}; use {', '.join(_DIFFAUGMENT_OPS)}")
        x = _DIFFAUGMENT_OPS[name](x, rng)
    return x


# Row-major 2x2 matrices (a, b, c, d) of 0, 1, 2 and 3 quarter turns, acting on pixel coordinates about the centre.
_QUARTER_TURNS = torch.tensor([[1, 0, 0, 1], [0, -1, 1, 0], [-1, 0, 0, -1], [0, 1, -1, 0]])


def _geometric(x: Tensor, rng: torch.Generator, p: Tensor | float) -> Tensor:
    """ADA's pixel blitting, each with probability p per sample: x-flip, 90-degree rotation, integer translation.

    All three compose into one gather: for every output pixel, undo the translation (reflecting at
    the border, as ADA pads), then the rotation and the flip.
    """
    B, _, H, W = x.shape
    device = x.device
    flip = (torch.rand(B, generator=rng, device=device) < p) & (torch.rand(B, generator=rng, device=device) < 0.5)
    quarter_turns = torch.randint(0, 4, (B,), generator=rng, device=device)
    quarter_turns = torch.where(torch.rand(B, generator=rng, device=device) < p, quarter_turns, 0)
    if H != W:  # a quarter turn only maps a square onto itself
        quarter_turns = torch.zeros_like(quarter_turns)
    size = torch.tensor([[H], [W]], device=device)
    shift = torch.round((torch.rand(2, B, generator=rng, device=device) * 2 - 1) * 0.125 * size).long()  # (dy, dx)
    shift = torch.where(torch.rand(B, generator=rng, device=device) < p, shift, 0)

    # 1. Undo the translation, reflecting indices that fall off the image.
    i = torch.arange(H, device=device).view(1, H, 1) - shift[0].view(B, 1, 1)
    j = torch.arange(W, device=device).view(1, 1, W) - shift[1].view(B, 1, 1)
    i = (H - 1) - ((H - 1) - i.abs()).abs()
    j = (W - 1) - ((W - 1) - j.abs()).abs()
    # 2. Undo the rotation, then the flip. On a square, a quarter turn takes a pixel's source row and column
    # from (i, j) to (a i + b j + e, c i + d j + f): a, b, c, d in {-1, 0, 1} from the turn's matrix (its
    # second row negated by a flip), and e, f in {0, size - 1} keep them on the image.
    matrix = _QUARTER_TURNS.to(device)[quarter_turns]  # (B, 4)
    matrix[:, 2:] *= torch.where(flip, -1, 1)[:, None]
    a, b, c, d = matrix.view(B, 4, 1, 1).unbind(1)
    e, f = (H - 1) * (1 - a - b) // 2, (W - 1) * (1 - c - d) // 2
    return _gather_pixels(x, (a * W + c) * i + (b * W + d) * j + (e * W + f))  # row * W + column


def _ada_color(x: Tensor, rng: torch.Generator, p: Tensor | float) -> Tensor:
    """ADA's colour transforms, each with probability p per sample; a skipped one leaves the sample bit-exact.

    brightness + N(0, 0.2^2); contrast x 2^N(0, 0.5^2) about the image mean; saturation x 2^N(0, 1) about
    each pixel's grey value (RGB only).
    """
    brightness = torch.where(_uniform(x, rng) < p, _normal(x, rng) * 0.2, 0.0)
    x = x + brightness.to(x.dtype)
    contrast = torch.where(_uniform(x, rng) < p, torch.exp2(_normal(x, rng) * 0.5), 1.0)
    x = _scale_about(x, x.mean(dim=(1, 2, 3), keepdim=True), contrast)
    if x.size(1) == 3:
        saturation = torch.where(_uniform(x, rng) < p, torch.exp2(_normal(x, rng)), 1.0)
        x = _scale_about(x, x.mean(dim=1, keepdim=True), saturation)
    return x


def _ada_cutout(x: Tensor, rng: torch.Generator, p: Tensor | float) -> Tensor:
    """Cutout of half the size with probability p per sample (size 0, no hole, otherwise)."""
    size = int(min(x.shape[2:]) * 0.5 + 0.5)
    sizes = torch.where(torch.rand(x.size(0), generator=rng, device=x.device) < p, size, 0)
    return x * _cutout_mask(x, rng, sizes)


def ada_augment(x: Tensor, rng: torch.Generator, p: Tensor | float) -> Tensor:
    """ADA's non-leaking pipeline at probability p: geometric (flip, quarter turns, translation), colour, cutout.

    Each transform applies to each sample with probability p; as long as p stays below ~0.8 G cannot
    learn the augmented distribution instead of the data's (Karras et al. 2020, sec. 2.3). The random
    draws do not depend on p, so the generator's state advances the same way at every p.
    """
    return _ada_cutout(_ada_color(_geometric(x, rng, p), rng, p), rng, p)


class AdaptiveAugment:
    """ADA (Karras et al. 2020): augment with probability p, tuned so that D's overfitting r_t stays at a target.

    r_t = E[sign(D(x_real))]: 0 when D cannot tell real from fake, 1 when it is sure of every training
    image. Every `interval` calls of update(), p moves by sign(r_t - target) * images / speed_imgs,
    where images is how many real logits were observed since the last adjustment: p can go from 0 to
    1 in speed_imgs images. p, r_t and the accumulators stay tensors on the logits' device, so the
    training step never waits for the GPU; reading `p` or `rt` does.

    Usage per step: x = ada(x, rng) for D's real and fake inputs; ada.observe(logits_real) after each
    D forward; ada.update() once per step.
    """

    def __init__(self, *, target: float = 0.6, interval: int = 4, speed_imgs: int = 500_000, p: float = 0.0) -> None:
        if not 0 < target < 1:
            raise ValueError(f"ADA target must be in (0, 1); got {target}")
        if interval < 1 or speed_imgs < 1:
            raise ValueError(f"ADA interval and speed_imgs must be positive; got {interval} and {speed_imgs}")
        self.target = target
        self.interval = interval
        self.speed_imgs = speed_imgs
        self._p = torch.tensor(float(p))
        self._rt = torch.tensor(0.0)
        self._stats = torch.zeros(2)  # [sum of sign(l_real), number of logits] since the last adjustment
        self._calls = 0  # update() calls: the phase of the adjustment interval

    @property
    def p(self) -> float:
        """The current augmentation probability (syncs the GPU: read it when logging)."""
        return float(self._p)

    @property
    def rt(self) -> float:
        """The overfitting measure r_t of the last adjustment (0 before the first)."""
        return float(self._rt)

    def __call__(self, x: Tensor, rng: torch.Generator) -> Tensor:
        """x (B, C, H, W) augmented at the current p; differentiable in x."""
        return ada_augment(x, rng, self._p)

    def observe(self, logits_real: Tensor) -> None:
        """Accumulate sign(D(x)) over a batch of real logits (B,)."""
        if self._stats.device != logits_real.device:
            self._p, self._rt, self._stats = (t.to(logits_real.device) for t in (self._p, self._rt, self._stats))
        self._stats[0] += logits_real.detach().sign().sum().float()
        self._stats[1] += logits_real.numel()

    def update(self, reduce: Callable[[Tensor], Any] | None = None) -> None:
        """Count a step; every `interval` steps, move p toward r_t = target and reset the accumulators.

        Args:
            reduce: sums a tensor in place across processes (torch.distributed.all_reduce), so that
                every process computes the same r_t and p.
        """
        self._calls += 1
        if self._calls % self.interval:
            return
        if reduce is not None:
            reduce(self._stats)
        sign_sum, count = self._stats[0], self._stats[1]
        rt = sign_sum / count.clamp(min=1)
        self._p = (self._p + torch.sign(rt - self.target) * count / self.speed_imgs).clamp(0, 1)
        self._rt = torch.where(count > 0, rt, self._rt)
        self._stats = torch.zeros_like(self._stats)

    def state_dict(self) -> dict[str, Any]:
        """p, r_t, the accumulators and the interval phase: all a resumed run needs to continue exactly."""
        return {"p": self._p.clone(), "rt": self._rt.clone(), "stats": self._stats.clone(), "calls": self._calls}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = self._stats.device
        self._p = state["p"].to(device, torch.float32)
        self._rt = state["rt"].to(device, torch.float32)
        self._stats = state["stats"].to(device, torch.float32)
        self._calls = int(state["calls"])
