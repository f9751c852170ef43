"""TensorBoard event files under RUN/tb/ (scalars and sample grids), for users of PyTorch tools."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.images import make_grid

TB_DIR = "tb"
MISSING = "--tensorboard needs the tensorboard package: pip install 'ganforge[tensorboard]'"


def _summary_writer() -> Any:
    """torch's SummaryWriter class, or a ConfigError saying how to install what it needs."""
    try:
        import tensorboard  # noqa: F401  (torch.utils.tensorboard imports it lazily and fails less clearly)
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as e:
        raise ConfigError(MISSING) from e
    return SummaryWriter


def _hwc(image: Tensor | np.ndarray | bytes) -> np.ndarray:
    """A grid as (H, W, C) uint8 from PNG bytes, an (H, W, C) uint8 array, or (N, C, H, W) floats in [-1, 1]."""
    if isinstance(image, bytes):
        with Image.open(io.BytesIO(image)) as im:
            return np.asarray(im.convert("RGB"))
    if isinstance(image, Tensor):
        x = image.detach().float().cpu()
        if x.ndim == 3:
            x = x.unsqueeze(0)
        return make_grid(x, nrow=max(1, math.ceil(math.sqrt(x.size(0)))))
    array = np.asarray(image)
    if array.ndim == 2:
        array = array[:, :, None]
    return array.astype(np.uint8)


class TensorBoardLog:
    """Writes RUN/tb/ event files: `scalars(step, values)`, `image(step, tag, grid)`, `close()`.

    Example:
        >>> tb = TensorBoardLog("runs/seed"); tb.scalars(100, {"loss_d": 0.7}); tb.close()
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / TB_DIR
        self.writer = _summary_writer()(log_dir=str(self.path))

    def scalars(self, step: int, values: dict[str, Any]) -> None:
        """One scalar a key (numbers only: lists such as warnings are skipped); `loss_d` goes under `train/`."""
        for key, value in values.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                self.writer.add_scalar(key if "/" in key else f"train/{key}", float(value), step)

    def image(self, step: int, tag: str, image: Tensor | np.ndarray | bytes) -> None:
        """A sample grid: PNG bytes, an (H, W, C) uint8 array, or (N, C, H, W) images in [-1, 1] (tiled)."""
        pixels = _hwc(image)
        if pixels.shape[2] == 1:
            pixels = np.repeat(pixels, 3, axis=2)
        self.writer.add_image(tag, np.ascontiguousarray(pixels), step, dataformats="HWC")

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()

    def __enter__(self) -> TensorBoardLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
