"""Images -> extractor features and class probabilities, converting size and channels where that is meaningful."""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.metrics.extractors import Extractor, load_extractor

log = logging.getLogger(__name__)

MIN_SIDE = 8  # smaller "images" (toy points are 1x1) are not pictures an image extractor can read
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, as Pillow's convert("L")


def prepare_images(images: Tensor, extractor: Extractor) -> Tensor:
    """(N, C, H, W) floats in [-1, 1] (or uint8) -> the extractor's input shape, logging each conversion."""
    x = torch.as_tensor(images)
    if x.ndim == 3:  # (N, H, W) grey
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ConfigError(f"images must be (N, C, H, W); got shape {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float().div(127.5).sub(1.0)
    x = x.float()
    n, c, h, w = x.shape
    if min(h, w) < MIN_SIDE:
        raise ConfigError(
            f"data of shape {(c, h, w)} is not images, so the {extractor.name!r} extractor cannot score it; "
            "2-D toy data (toy:ring8, toy:grid25) is scored on its coordinates: pass data='toy:...'"
        )
    if c not in (1, 3):
        raise ConfigError(f"images must have 1 (grey) or 3 (RGB) channels; got {c}; convert them first")
    if n and (float(x.min()) < -1.001 or float(x.max()) > 1.001):
        log.warning("images range over [%.3g, %.3g], not [-1, 1]; clamping them", float(x.min()), float(x.max()))
        x = x.clamp(-1, 1)
    want_c, want_h, want_w = extractor.input_shape
    if c == 3 and want_c == 1:
        log.warning(
            "converting %d RGB images to grey for the %r extractor, which reads grey images: the scores are of grey "
            "copies (colour images of 32-128 px get the emoji colour extractor; pass --extractor emoji)",
            n, extractor.name,
        )  # fmt: skip
        x = (x * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(1, keepdim=True)
    if c == 1 and want_c == 3:
        log.warning("repeating %d grey images over 3 channels for the %r extractor", n, extractor.name)
        x = x.expand(-1, 3, -1, -1)
    if want_h and (h, w) != (want_h, want_w):
        log.warning(
            "resizing %d images from %dx%d to %dx%d for the %r extractor", n, h, w, want_h, want_w, extractor.name
        )
        x = F.interpolate(x, size=(want_h, want_w), mode="bilinear", antialias=True, align_corners=False)
    return x


@torch.no_grad()
def extract(
    images: Tensor,
    extractor: Extractor,
    *,
    batch_size: int = 500,
    device: str | torch.device = "cpu",
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """(features (N, D) float32, class probabilities (N, K) float32) of images in [-1, 1].

    on_batch(done, total): called after each batch with the images done so far, for a progress bar.
    """
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1; got {batch_size}")
    x = prepare_images(images, extractor)
    batch_size = min(batch_size, extractor.batch_limit or batch_size)
    net = extractor.net.to(device).eval()
    features, probs = [], []
    for start in range(0, x.size(0), batch_size):
        batch = x[start : start + batch_size].to(device)
        if extractor.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        h, logits = net(batch)
        features.append(h.float().cpu())
        probs.append(logits.float().softmax(1).cpu())
        if on_batch is not None:
            on_batch(min(start + batch_size, x.size(0)), x.size(0))
    if not features:
        return np.zeros((0, extractor.feature_dim), np.float32), np.zeros((0, extractor.num_classes), np.float32)
    return torch.cat(features).numpy(), torch.cat(probs).numpy()


def extract_features(images: Tensor, extractor: str | Extractor = "mnist", *, batch_size: int = 500) -> np.ndarray:
    """(N, D) penultimate features of (N, C, H, W) images in [-1, 1] (uint8 accepted).

    Example:
        >>> features = extract_features(ganforge.sample(G, 1000), extractor="mnist")  # (1000, 128)
    """
    if isinstance(extractor, str):
        extractor = load_extractor(extractor)
    return extract(images, extractor, batch_size=batch_size)[0]
