"""Training the passive detector: real images against samples of generator files and run checkpoints.

Both classes go through the same augmentations (small shifts, then JPEG re-encoding at a random quality on half
of them), so neither a re-save nor an offset tells the classes apart: only what the generators leave in the
pixels does. The verdict's threshold is set on real images held out from training, so that at most
`calibration_fpr` of them (clean and re-encoded) are flagged.
"""

from __future__ import annotations

import io
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from ganforge.checkpoint import GENERATOR_FILE, list_checkpoints, load_checkpoint, load_generator
from ganforge.config import model_config_from_dict
from ganforge.detector import DetectorNet, grey_28, save_detector, to_input
from ganforge.errors import CheckpointError, ConfigError
from ganforge.images import to_uint8
from ganforge.models import Generator, build_generator
from ganforge.sample import class_labels, generate, latents
from ganforge.version import __version__

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Augment:
    """Augmentations applied alike to real and fake training images."""

    rescale_p: float = 0.3  # share of images cropped or padded by up to rescale_px a side, then resized to 28x28
    rescale_px: int = 3
    max_shift: int = 2  # pixels, each axis, filled with black (MNIST's background)
    jpeg_p: float = 0.5  # share of images re-encoded as JPEG
    jpeg_quality: tuple[int, int] = (40, 95)  # uniform over this range, inclusive


def jpeg(pixels: np.ndarray, quality: int) -> np.ndarray:
    """Re-encode one uint8 (H, W) image as a JPEG of `quality` and decode it, as a re-save on the web would."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="JPEG", quality=int(quality))
    return np.asarray(Image.open(buffer).convert("L"), dtype=np.uint8)


def shift(pixels: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Move a (H, W) image by (dy, dx) pixels, filling with 0."""
    out = np.zeros_like(pixels)
    h, w = pixels.shape
    out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = pixels[
        max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
    ]
    return out


def rescale(pixels: np.ndarray, margin: int) -> np.ndarray:
    """Crop `margin` pixels off every side (margin > 0) or pad -margin black ones (< 0), and resize back."""
    h, w = pixels.shape
    if margin > 0:
        window = pixels[margin : h - margin, margin : w - margin]
    else:
        window = np.pad(pixels, -margin)
    image = Image.fromarray(np.ascontiguousarray(window)).resize((w, h), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def augment(batch: np.ndarray, rng: np.random.Generator, aug: Augment) -> np.ndarray:
    """(N, 28, 28) uint8 -> the same, (some) rescaled, shifted and (some) JPEG re-encoded."""
    out = np.empty_like(batch)
    for i, pixels in enumerate(batch):
        if aug.rescale_px and rng.random() < aug.rescale_p:
            margin = int(rng.integers(-aug.rescale_px, aug.rescale_px + 1))
            if margin:
                pixels = rescale(pixels, margin)
        if aug.max_shift:
            dy, dx = rng.integers(-aug.max_shift, aug.max_shift + 1, size=2)
            pixels = shift(pixels, int(dy), int(dx))
        if rng.random() < aug.jpeg_p:
            pixels = jpeg(pixels, int(rng.integers(aug.jpeg_quality[0], aug.jpeg_quality[1] + 1)))
        out[i] = pixels
    return out


@dataclass
class FakeSource:
    """One generator whose samples are fake training data: a generator file or a checkpoint's G (EMA when kept)."""

    name: str
    G: Generator
    meta: dict[str, Any] = field(default_factory=dict)


def generator_from_checkpoint(path: Path) -> Generator:
    """The sampling G of a training checkpoint (G_ema when the run keeps one), in eval mode."""
    payload = load_checkpoint(path)
    try:
        cfg = model_config_from_dict(json.loads(payload["config"])["model"])
        G = build_generator(cfg)
        G.load_state_dict(payload["G_ema"] if "G_ema" in payload else payload["G"])
    except (KeyError, TypeError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"checkpoint {path} has no usable generator ({e}); pass another run") from e
    return G.eval()


def fake_sources(runs: Sequence[str | Path], *, checkpoints: bool = True) -> list[FakeSource]:
    """Each RUN: its generator file and (checkpoints=True) every checkpoint it keeps; or a generator/.pt file."""
    sources = []
    for run in runs:
        path = Path(run)
        if path.is_dir():
            if (path / GENERATOR_FILE).is_file():
                sources.append(FakeSource(f"{path}", load_generator(path), {"run": str(path), "step": "final"}))
            if checkpoints:
                for step, ckpt in list_checkpoints(path):
                    G = generator_from_checkpoint(ckpt)
                    sources.append(FakeSource(f"{path}@{step}", G, {"run": str(path), "step": step}))
            if not any(s.meta.get("run") == str(path) for s in sources):
                raise ConfigError(f"--fake {run} has no generator.safetensors and no checkpoints; pass a run folder")
        elif path.suffix == ".pt":
            sources.append(FakeSource(str(path), generator_from_checkpoint(path), {"checkpoint": str(path)}))
        elif path.is_file():
            sources.append(FakeSource(str(path), load_generator(path), {"file": str(path)}))
        else:
            raise ConfigError(f"--fake {run} does not exist; pass a run folder, a generator file or a checkpoint")
    for source in sources:
        if source.G.cfg.image_size < 8 or source.G.cfg.channels not in (1, 3):
            raise ConfigError(f"--fake {source.name} makes {tuple(source.G.cfg.shape)} samples, not images")
    return sources


def draw_fakes(sources: Sequence[FakeSource], n_each: int, *, seed: int) -> np.ndarray:
    """n_each samples of every source as (N, 28, 28) uint8 grey (what a saved PNG holds), seeds from `seed`."""
    out = []
    for i, source in enumerate(sources):
        G = source.G
        z = latents(n_each, G.cfg.z_dim, seed=seed + i)
        pixels = to_uint8(generate(G, z, class_labels(G, n_each, None)))  # (N, H, W, C)
        out.append(np.stack([grey_28(p) for p in pixels]))
    return np.concatenate(out)


def roc_auc(real: np.ndarray, fake: np.ndarray) -> float:
    """Area under the ROC curve of scores (fake the positive class): P(fake score > real score), ties half."""
    scores = np.concatenate([real, fake])
    order = scores.argsort(kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    # Average ranks over ties.
    _, first, counts = np.unique(sorted_scores, return_index=True, return_counts=True)
    for start, count in zip(first, counts, strict=True):
        ranks[order[start : start + count]] = start + (count + 1) / 2
    n_real, n_fake = len(real), len(fake)
    return float((ranks[n_real:].sum() - n_fake * (n_fake + 1) / 2) / (n_real * n_fake))


@dataclass
class TrainedDetector:
    net: DetectorNet
    threshold: float
    protocol: dict[str, Any]


def train_detector(
    real: np.ndarray,
    fake: np.ndarray,
    *,
    steps: int = 3_000,
    seed: int = 0,
    batch_size: int = 128,
    lr: float = 1e-3,
    width: int = 16,
    aug: Augment = Augment(),
    holdout: float = 0.1,
    calibration_fpr: float = 0.005,
    on_step: Callable[[int, float], None] | None = None,
) -> TrainedDetector:
    """Train a detector on real (N, 28, 28) uint8 against fake (M, 28, 28) uint8; threshold from held-out reals.

    A `holdout` share of each class is kept out of training: the reals set the threshold (their 1 - calibration_fpr
    quantile, clean and augmented, and never below 0.5) and both report a held-out ROC-AUC in the protocol.
    """
    if len(real) < 20 or len(fake) < 20:
        raise ConfigError(f"need at least 20 real and 20 fake images; got {len(real)} and {len(fake)}")
    if steps < 1:
        raise ConfigError(f"steps must be at least 1; got {steps}")
    rng = np.random.default_rng(seed)
    torch.manual_seed(seed)
    real, fake = real[rng.permutation(len(real))], fake[rng.permutation(len(fake))]
    n_real_held, n_fake_held = max(10, int(len(real) * holdout)), max(10, int(len(fake) * holdout))
    real_held, real_train = real[:n_real_held], real[n_real_held:]
    fake_held, fake_train = fake[:n_fake_held], fake[n_fake_held:]

    # 1. Balanced batches, both halves augmented alike; Adam with a linear lr decay to 0.
    net = DetectorNet(width=width)
    opt = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=1e-5)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 1 - t / steps)
    half = batch_size // 2
    target = torch.cat([torch.zeros(half), torch.ones(half)])
    start = time.perf_counter()
    net.train()
    for step in range(1, steps + 1):
        pick_real = real_train[rng.integers(0, len(real_train), half)]
        pick_fake = fake_train[rng.integers(0, len(fake_train), half)]
        x = to_input(torch.from_numpy(augment(np.concatenate([pick_real, pick_fake]), rng, aug)).unsqueeze(1))
        loss = torch.nn.functional.binary_cross_entropy_with_logits(net(x), target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        if on_step is not None:
            on_step(step, float(loss.detach()))
    net.eval()

    # 2. The threshold: held-out reals, clean and augmented, flagged at most calibration_fpr of the time.
    from ganforge.detector import Detector, score

    held = Detector(net, 0.5, "", Path(), {})
    cal_rng = np.random.default_rng(seed + 1)
    real_scores = np.concatenate([score(torch.from_numpy(r).unsqueeze(1), held)
                                  for r in (real_held, augment(real_held, cal_rng, aug))])  # fmt: skip
    fake_scores = score(torch.from_numpy(fake_held).unsqueeze(1), held)
    threshold = max(0.5, float(np.quantile(real_scores, 1 - calibration_fpr)))
    protocol = {
        "ganforge_version": __version__,
        "input": "grey 28x28 (colour -> ITU-R 601 luma, other sizes resized, bilinear antialiased)",
        "steps": steps,
        "seed": seed,
        "batch_size": batch_size,
        "lr": lr,
        "width": width,
        "augment": {
            "rescale_p": aug.rescale_p,
            "rescale_px": aug.rescale_px,
            "max_shift": aug.max_shift,
            "jpeg_p": aug.jpeg_p,
            "jpeg_quality": list(aug.jpeg_quality),
        },  # fmt: skip
        "n_real_train": int(len(real_train)),
        "n_fake_train": int(len(fake_train)),
        "n_real_heldout": int(n_real_held),
        "n_fake_heldout": int(n_fake_held),
        "calibration_fpr": calibration_fpr,
        "heldout_auc": round(roc_auc(real_scores[:n_real_held], fake_scores), 6),
        "heldout_real_flagged": round(float((real_scores > threshold).mean()), 6),
        "heldout_fake_flagged": round(float((fake_scores > threshold).mean()), 6),
        "train_seconds": round(time.perf_counter() - start, 1),
    }
    return TrainedDetector(net, threshold, protocol)


def train_and_save(
    real: np.ndarray,
    real_spec: str,
    sources: Sequence[FakeSource],
    out: str | Path,
    *,
    n_fake: int = 20_000,
    steps: int = 3_000,
    seed: int = 0,
    on_step: Callable[[int, float], None] | None = None,
) -> tuple[TrainedDetector, str]:
    """Draw fakes from every source, train, and write the detector file; returns it and the file's sha256."""
    if not sources:
        raise ConfigError("no fake sources; pass at least one run with --fake")
    n_each = max(1, n_fake // len(sources))
    fake = draw_fakes(sources, n_each, seed=seed * 1_000_003)
    trained = train_detector(real, fake, steps=steps, seed=seed, on_step=on_step)
    trained.protocol["real"] = {"spec": real_spec, "count": int(len(real))}
    trained.protocol["fake"] = [{**s.meta, "name": s.name, "n": n_each, "sha256_of_weights": _weights_digest(s.G)}
                                for s in sources]  # fmt: skip
    trained.protocol["threshold"] = trained.threshold
    digest = save_detector(out, trained.net, threshold=trained.threshold, protocol=trained.protocol)
    return trained, digest


def _weights_digest(G: Generator) -> str:
    """sha256 of a generator's sha256 when loaded from a file, else of its weights' bytes (checkpoints)."""
    known = getattr(G, "sha256", None)
    if isinstance(known, str):
        return known
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in sorted(G.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()
