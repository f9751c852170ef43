"""Projection: find the latent (and class) whose generated image is closest to a given real image.

As stylegan2-ada-pytorch's projector does, Adam moves z to lower a distance between G(z) and the target;
here the distance is the pixel MSE plus (for 28x28 grey models) one minus the cosine of the shipped extractor's
features. Several random starts (and, for a conditional G, several classes) run together in one batch: a short
search by pixel distance alone picks the best start and class of each image, then that one is refined.
"""

from __future__ import annotations

import io
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps, UnidentifiedImageError
from torch import Tensor

from ganforge.decoding import open_image
from ganforge.errors import ConfigError, DataError
from ganforge.images import is_points
from ganforge.metrics.extractors import Extractor, load_extractor, resolve_extractor_name
from ganforge.models import Generator
from ganforge.sample import latents

log = logging.getLogger(__name__)

DEFAULT_STEPS = 200
DEFAULT_STARTS = 4
SEARCH_FRACTION = 0.25  # of the steps: the multi-start (and multi-class) search by pixel distance
SEARCH_LR = 0.1
REFINE_LR = 0.05
FEATURE_WEIGHT = 1.0  # weight of (1 - feature cosine) beside the pixel MSE (images in [-1, 1])
LATENT_WEIGHT = 1e-3  # a weak N(0, 1) prior on z: mean(z^2), keeps z where G was trained
BATCH = 64  # images projected together; with 4 starts and 2 classes, 512 rows in the search
TOP_CLASSES = 2  # a conditional G with an extractor: the extractor's two likeliest classes are tried
MAX_PIXELS = 4096 * 4096  # an input image larger than this is refused before it is decoded


@dataclass
class Projection:
    """The result for N inputs: latents, classes, reconstructions and their distances to the targets."""

    z: Tensor  # (N, z_dim) float32
    labels: Tensor | None  # (N,) int64 for a conditional G, else None
    images: Tensor  # (N, C, H, W) reconstructions G(z, labels) in [-1, 1]
    targets: Tensor  # (N, C, H, W) the inputs as projected: converted to G's size and channels, in [-1, 1]
    pixel_mse: Tensor  # (N,) mean squared pixel error, images in [-1, 1]
    feature_cosine: Tensor | None  # (N,) cosine of the extractor's features, None without an extractor
    extractor: str | None  # the extractor's name, None for pixel distance alone


def extractor_for(G: Generator) -> Extractor | None:
    """The shipped extractor that reads G's images (28x28 grey), or None: then pixel distance alone."""
    if tuple(G.cfg.shape) != (1, 28, 28):
        return None
    data = str((getattr(G, "provenance", None) or {}).get("data") or "mnist")
    return load_extractor(resolve_extractor_name(None, data))


def _fit(image: Image.Image, shape: tuple[int, int, int]) -> Tensor:
    """A PIL image ("L" or "RGB") -> (C, H, W) float in [-1, 1]: the model's mode, short side scaled, center crop."""
    c, h, w = shape
    fitted = ImageOps.fit(image.convert("L" if c == 1 else "RGB"), (w, h), method=Image.Resampling.BILINEAR)
    pixels = torch.from_numpy(np.asarray(fitted, dtype=np.uint8).reshape(h, w, c).copy()).permute(2, 0, 1)
    return pixels.float().div(127.5).sub(1.0)


def decode_image(source: str | Path | bytes, *, name: str | None = None) -> Image.Image:
    """An image file (or its bytes) -> a PIL image, "L" or "RGB"; DataError when it cannot be read."""
    name = name or (str(source) if not isinstance(source, bytes) else "the image")
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else open(source, "rb")  # noqa: SIM115
    except OSError as e:
        raise DataError(f"cannot read image {name}: {e.strerror}; pass an existing PNG or JPEG file") from e
    with stream:
        try:
            with Image.open(stream) as probe:
                width, height = probe.size
            if width * height > MAX_PIXELS:
                raise DataError(
                    f"image {name} is {width}x{height} pixels, over the limit of {MAX_PIXELS:,}; pass a smaller image"
                )
            stream.seek(0)
            image = open_image(stream)
        except (UnidentifiedImageError, OSError, ValueError, SyntaxError, Image.DecompressionBombError) as e:
            raise DataError(f"cannot decode image {name} ({type(e).__name__}); pass a PNG, JPEG or WebP image") from e
    return image


def read_images(sources: Sequence[str | Path | bytes], shape: tuple[int, int, int]) -> Tensor:
    """Image files (or bytes) -> (N, C, H, W) in [-1, 1] at G's shape; one log line says how many were converted."""
    mode = "L" if shape[0] == 1 else "RGB"
    out, converted = [], 0
    for source in sources:
        image = decode_image(source)
        converted += image.size != (shape[2], shape[1]) or image.mode != mode
        out.append(_fit(image, shape))
    if converted:
        what = f"{shape[2]}x{shape[1]} {'grey' if shape[0] == 1 else 'RGB'}"
        log.info("%d of %d input image(s) resized/converted to %s (the model's size and channels)",
                 converted, len(out), what)  # fmt: skip
    return torch.stack(out) if out else torch.empty(0, *shape)


def _candidate_classes(G: Generator, targets: Tensor, label: int | None, extractor: Extractor | None) -> Tensor | None:
    """(N, K') classes to try per target: the fixed one, the extractor's likeliest, or all; None if unconditional."""
    num_classes = G.cfg.num_classes
    n = targets.size(0)
    if num_classes == 0:
        if label is not None:
            raise ConfigError(f"this generator is unconditional; drop the class (--class {label})")
        return None
    if label is not None:
        if not 0 <= label < num_classes:
            raise ConfigError(f"class must be in 0..{num_classes - 1} (this generator has {num_classes}); got {label}")
        return torch.full((n, 1), label, dtype=torch.long)
    if extractor is not None and extractor.num_classes == num_classes:
        with torch.no_grad():
            _, logits = extractor.net(targets)
        return logits.topk(min(TOP_CLASSES, num_classes), dim=1).indices
    return torch.arange(num_classes).expand(n, num_classes).clone()


def _distance(G: Generator, z: Tensor, y: Tensor | None, target: Tensor, target_features: Tensor | None,
              extractor: Extractor | None) -> tuple[Tensor, Tensor, Tensor | None]:  # fmt: skip
    """Per-row loss (B,), pixel MSE (B,) and feature cosine (B,) or None, for latents z (B, z_dim)."""
    fake = G(z, y)
    pixel = (fake - target).pow(2).flatten(1).mean(1)
    loss = pixel + LATENT_WEIGHT * z.pow(2).mean(1)
    if extractor is None or target_features is None:
        return loss, pixel, None
    features, _ = extractor.net(fake)
    cosine = F.cosine_similarity(features, target_features, dim=1)
    return loss + FEATURE_WEIGHT * (1 - cosine), pixel, cosine


def _adam(
    G: Generator,
    z: Tensor,
    y: Tensor | None,
    target: Tensor,
    target_features: Tensor | None,
    extractor: Extractor | None,
    *,
    steps: int,
    lr: float,
    tick: Callable[[], None],
) -> Tensor:
    """Adam on z alone (G's weights get no gradient, so G may serve other requests meanwhile); cosine lr decay."""
    z = z.clone().requires_grad_(True)
    opt = torch.optim.Adam([z], lr=lr)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        loss, _, _ = _distance(G, z, y, target, target_features, extractor)
        # Summed, so each row's gradient is its own: Adam then moves every row as if it were alone.
        (z.grad,) = torch.autograd.grad(loss.sum(), [z])
        opt.step()
        tick()
    return z.detach()


def project(
    G: Generator,
    targets: Tensor,
    *,
    steps: int = DEFAULT_STEPS,
    starts: int = DEFAULT_STARTS,
    label: int | None = None,
    seed: int = 0,
    extractor: Extractor | None | str = "auto",
    batch: int = BATCH,
    on_step: Callable[[int, int], None] | None = None,
) -> Projection:
    """Project targets (N, C, H, W) in [-1, 1] into G's latent space; the same inputs and seed give the same result.

    Args:
        label: fix the class of a conditional G; None tries the extractor's likeliest classes (all without one).
        extractor: "auto" picks the shipped one for 28x28 grey models (None elsewhere: pixel distance alone).
        batch: images projected together (with all their starts and classes); bounds the memory.
        on_step: called as on_step(done, total) after every Adam step of every batch.

    Example:
        >>> result = project(G, read_images(["seven.png"], G.cfg.shape), steps=200)
    """
    # 1. Check the inputs.
    if is_points(G.cfg.shape):
        raise ConfigError("this generator makes 2-D points, not images; projection needs an image model")
    if steps < 4 or starts < 1 or batch < 1:
        raise ConfigError(f"projection needs steps >= 4, starts >= 1, batch >= 1; got {steps}, {starts}, {batch}")
    targets = torch.as_tensor(targets).float()
    if targets.ndim != 4 or tuple(targets.shape[1:]) != tuple(G.cfg.shape) or not len(targets):
        raise ConfigError(f"targets must be (N >= 1, {', '.join(map(str, G.cfg.shape))}); got {tuple(targets.shape)}")
    if extractor == "auto":
        extractor = extractor_for(G)
        if extractor is None:
            c, h, w = G.cfg.shape
            what = f"{w}x{h} {'grey' if c == 1 else 'RGB' if c == 3 else f'{c}-channel'}"
            log.info("no shipped extractor reads %s images; projecting by pixel distance alone", what)
    assert not isinstance(extractor, str)
    device = next(G.parameters()).device
    if extractor is not None:
        extractor.net.to(device)
    n = targets.size(0)
    done, total = 0, steps * math.ceil(n / batch)

    def tick() -> None:
        nonlocal done
        done += 1
        if on_step is not None:
            on_step(done, total)

    # 2. Every batch of images on its own. Image i's random starts are rows of one seeded stream, the same
    # for any N and batch (a seed's first k latents do not depend on how many are drawn).
    parts = []
    for first in range(0, n, batch):
        chunk = targets[first : first + batch].to(device)
        classes = _candidate_classes(G, chunk, label, extractor)
        per_image = starts * (1 if classes is None else classes.size(1))
        z0 = latents((first + len(chunk)) * per_image, G.cfg.z_dim, seed=seed)[first * per_image :].to(device)
        parts.append(_project_batch(G, chunk, classes, z0, extractor, starts=starts, steps=steps, tick=tick))
    z, y, images, pixel, cosine = (_cat([p[k] for p in parts]) for k in range(5))
    assert z is not None and images is not None and pixel is not None
    return Projection(
        z=z, labels=y, images=images, targets=targets, pixel_mse=pixel, feature_cosine=cosine,
        extractor=None if extractor is None else extractor.name,
    )  # fmt: skip


def _cat(parts: list[Tensor | None]) -> Tensor | None:
    return None if any(p is None for p in parts) else torch.cat([p for p in parts if p is not None])


def _project_batch(
    G: Generator,
    targets: Tensor,
    classes: Tensor | None,
    z0: Tensor,
    extractor: Extractor | None,
    *,
    starts: int,
    steps: int,
    tick: Callable[[], None],
) -> tuple[Tensor, Tensor | None, Tensor, Tensor, Tensor | None]:
    """(z, classes, images, pixel MSE, feature cosine) for one batch of targets; z0: their starts, image-major."""
    n = targets.size(0)
    per_image = z0.size(0) // n
    device = targets.device
    with torch.no_grad():
        target_features = None if extractor is None else extractor.net(targets)[0]
    search_steps = max(1, round(steps * SEARCH_FRACTION))

    # 1. Search: every start and class of every image in one batch, by pixel distance (the cheap part of the loss).
    y0 = None if classes is None else classes.repeat_interleave(starts, dim=1).reshape(-1).to(device)
    target_rows = targets.repeat_interleave(per_image, dim=0)
    z_search = _adam(G, z0, y0, target_rows, None, None, steps=search_steps, lr=SEARCH_LR, tick=tick)
    with torch.no_grad():
        features_rows = None if target_features is None else target_features.repeat_interleave(per_image, dim=0)
        score, _, _ = _distance(G, z_search, y0, target_rows, features_rows, extractor)
    best = score.reshape(n, per_image).argmin(1) + torch.arange(n, device=device) * per_image

    # 2. Refine the best candidate of each image on the whole distance, pixels and features.
    y = None if y0 is None else y0[best]
    z = _adam(G, z_search[best], y, targets, target_features, extractor, steps=steps - search_steps, lr=REFINE_LR,
              tick=tick)  # fmt: skip
    with torch.no_grad():
        _, pixel, cosine = _distance(G, z, y, targets, target_features, extractor)
        images = G(z, y).float()
    return (
        z.cpu(),
        None if y is None else y.cpu(),
        images.cpu(),
        pixel.cpu(),
        None if cosine is None else cosine.cpu(),
    )
