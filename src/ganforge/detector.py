"""The passive detector: a small CNN that scores a grey 28x28 image as real (0) or GAN-generated (1).

In the spirit of Wang et al. (CVPR 2020, "CNN-generated images are surprisingly easy to spot... for now"): a plain
classifier trained on real images against samples of several generators, with re-encoding and shift augmentations,
carries over to generators it never saw. It needs no key. Input is what ganforge's MNIST models make: one grey
28x28 image; anything else is converted to grey (ITU-R 601 luma, as Pillow's "L") and resized to 28x28 first, so a
large photo or a grid of digits is scored as the 28x28 thumbnail it shrinks to, which is not what it was trained on.
The shipped weights (trained by `python bench/detector.py`) live in ganforge/weights/ with their sha256.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from safetensors import SafetensorError, safe_open
from safetensors.torch import save as safetensors_bytes
from torch import Tensor, nn

from ganforge.errors import CheckpointError, ConfigError
from ganforge.io import file_digest, read_sha256sums, write_bytes_atomic

log = logging.getLogger(__name__)

WEIGHTS_DIR = Path(__file__).parent / "weights"
SHIPPED_FILE = "detector-mnist.safetensors"
SHA256SUMS = "SHA256SUMS"
DETECTOR_FORMAT = "ganforge.detector"
INPUT_SIZE = 28
REBUILD = "python bench/detector.py"
TRAIN = "`ganforge detector train`"
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601, what Pillow's convert("L") uses


class DetectorNet(nn.Module):
    """(B, 1, 28, 28) in [-1, 1] -> logits (B,): generated > 0.

    Two full-resolution 3x3 convs keep the pixel-level traces GANs leave (Wang et al.: those, not the content,
    give a generator away), then two pooled stages and a global average, so a shifted image scores alike.
    """

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        channels = [1, width, width, 2 * width, 2 * width, 4 * width]
        for i, (c_in, c_out) in enumerate(zip(channels[:-1], channels[1:], strict=True)):
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU()]
            if i in (1, 3):
                layers.append(nn.MaxPool2d(2))  # 28 -> 14 -> 7
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(4 * width, 1)
        self.width = width

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.body(x).mean(dim=(2, 3))).squeeze(1)


@dataclass
class Detector:
    """A loaded detector: its network, the threshold its verdict uses, and the file's sha256 and metadata."""

    net: DetectorNet
    threshold: float
    sha256: str
    path: Path
    protocol: dict[str, Any]

    def score(self, images: Any, *, batch_size: int = 512) -> np.ndarray:
        """P(generated) in [0, 1] for each image; see `score`."""
        return score(images, self, batch_size=batch_size)


def to_input(images: Any) -> Tensor:
    """Images -> (B, 1, 28, 28) float32 in [-1, 1], converting colour to grey and resizing to 28x28.

    Accepts a uint8 or float tensor (B, C, H, W) (floats in [-1, 1], as ganforge's generators make them), or a
    sequence of uint8 numpy arrays (H, W) / (H, W, C) of any size (as read from files).
    """
    if isinstance(images, Tensor):
        x = images.detach().cpu()
        if x.dim() != 4:
            raise ConfigError(f"images must be (B, C, H, W); got shape {tuple(x.shape)}")
        x = x.float() / 127.5 - 1 if x.dtype == torch.uint8 else x.float().clamp(-1, 1)
        if x.size(1) in (3, 4):
            x = sum(w * x[:, i : i + 1] for i, w in enumerate(LUMA))  # type: ignore[assignment]
        elif x.size(1) != 1:
            raise ConfigError(f"images must have 1, 3 or 4 channels; got {x.size(1)}")
        if x.shape[-2:] != (INPUT_SIZE, INPUT_SIZE):
            x = nn.functional.interpolate(x, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", antialias=True)
        return x.contiguous()
    arrays = [grey_28(np.asarray(a)) for a in images]
    if not arrays:
        return torch.empty(0, 1, INPUT_SIZE, INPUT_SIZE)
    return torch.from_numpy(np.stack(arrays)).float().div(127.5).sub(1).unsqueeze(1)


def grey_28(pixels: np.ndarray) -> np.ndarray:
    """One uint8 image (H, W) or (H, W, C) -> (28, 28) uint8 grey: Pillow's luma, then an antialiased resize."""
    if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3):
        raise ConfigError(f"an image must be uint8 (H, W) or (H, W, C); got {pixels.dtype} {pixels.shape}")
    if pixels.ndim == 3 and pixels.shape[2] == 1:
        pixels = pixels[:, :, 0]
    if pixels.ndim == 2 and pixels.shape == (INPUT_SIZE, INPUT_SIZE):
        return pixels
    image = Image.fromarray(pixels)
    if image.mode != "L":
        image = image.convert("RGB").convert("L")  # drops alpha; RGB -> luma
    if image.size != (INPUT_SIZE, INPUT_SIZE):
        image = image.resize((INPUT_SIZE, INPUT_SIZE), Image.Resampling.BILINEAR)  # antialiased when shrinking
    return np.asarray(image, dtype=np.uint8)


@torch.no_grad()
def score(images: Any, detector: Detector | None = None, *, batch_size: int = 512) -> np.ndarray:
    """P(generated) in [0, 1] for each image (shipped detector unless one is given); float64 array (B,).

    Example:
        >>> ganforge.detector.score(ganforge.sample(G, 16, seed=3)).round(2)
    """
    detector = detector or load_detector()
    x = to_input(images)
    out = [torch.sigmoid(detector.net(x[i : i + batch_size]).double()) for i in range(0, len(x), batch_size)]
    return torch.cat(out).numpy() if out else np.zeros(0)


def save_detector(path: str | Path, net: DetectorNet, *, threshold: float, protocol: dict[str, Any]) -> str:
    """Write a detector file (safetensors; threshold and training protocol in the metadata); returns its sha256."""
    tensors = {k: v.detach().cpu().contiguous() for k, v in net.state_dict().items()}
    metadata = {
        "format": DETECTOR_FORMAT,
        "format_version": "1",
        "width": str(net.width),
        "threshold": repr(float(threshold)),
        "protocol": json.dumps(protocol, sort_keys=True),
    }
    write_bytes_atomic(path, safetensors_bytes(tensors, metadata=metadata))
    return file_digest(path)


def recorded_hashes(weights_dir: Path = WEIGHTS_DIR) -> dict[str, str]:
    """file name -> sha256 from the package's SHA256SUMS."""
    return read_sha256sums(weights_dir / SHA256SUMS)


def load_detector(path: str | Path | None = None, *, weights_dir: Path | None = None) -> Detector:
    """Load a detector file; without a path, the shipped MNIST detector, checked against its recorded sha256."""
    actual: str | None = None
    if path is None:
        weights_dir = WEIGHTS_DIR if weights_dir is None else Path(weights_dir)
        path = weights_dir / SHIPPED_FILE
        if not path.is_file():
            raise CheckpointError(f"the shipped detector {path} is missing; reinstall ganforge or run `{REBUILD}`")
        expected = recorded_hashes(weights_dir).get(path.name)
        actual = file_digest(path)  # checked here, and named in the Detector below: hashed once
        if actual != expected:
            raise CheckpointError(
                f"detector weights {path} have sha256 {actual[:12]}..., but the package records "
                f"{(expected or 'none')[:12]}...; the file is damaged or was replaced: reinstall ganforge or run "
                f"`{REBUILD}`"
            )
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"detector file {path} does not exist; pass a file from {TRAIN}")
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = dict(f.metadata() or {})
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"detector file {path} cannot be read ({e}); pass a file from {TRAIN}") from e
    if metadata.get("format") != DETECTOR_FORMAT:
        raise CheckpointError(f"{path} is not a ganforge detector file; pass a file from {TRAIN}")
    try:
        net = DetectorNet(width=int(metadata["width"]))
        net.load_state_dict(state, strict=True)
        threshold = float(metadata["threshold"])
        protocol = json.loads(metadata.get("protocol", "{}"))
    except (KeyError, ValueError, RuntimeError) as e:
        raise CheckpointError(f"detector file {path} is damaged ({str(e).splitlines()[0]}); retrain it") from e
    return Detector(net.eval(), threshold, actual or file_digest(path), path, protocol)
