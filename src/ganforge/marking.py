"""Which images ganforge marks, with which key and payload, and what their provenance says about it.

`sample`, the server and the training grids mark every image by default; `watermark=False`
(`--no-watermark`) turns it off. The provenance records `ganforge:watermark` (on/off), the payload
in hex and where the payload came from; never the key.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import ganforge.watermark as wm
from ganforge.errors import ConfigError

FROM_GENERATOR = "generator sha256"
FROM_RUN = "run name and config sha256 (the generator file does not exist yet)"

WatermarkSetting = bool | bytes  # True: the default key (GANFORGE_KEY_FILE or the per-user key); False: off


@dataclass(frozen=True)
class Marker:
    """Marks images with one key and one payload identity (a generator's sha256, or a run's hash)."""

    key: bytes | None  # None: the watermark is off
    identity: str
    source: str = FROM_GENERATOR

    @property
    def is_on(self) -> bool:
        return self.key is not None

    def payload(self, height: int, width: int) -> np.ndarray:
        """The payload bits an image of this size carries."""
        return wm.payload_bits(self.identity, wm.capacity(height, width))

    def apply(self, pixels: np.ndarray) -> np.ndarray:
        """Mark each image of (N, H, W, C) uint8 pixels; unchanged when off or when the images are too small."""
        height, width = pixels.shape[1:3]
        if self.key is None or not wm.is_markable(height, width):
            return pixels
        return wm.mark_batch(pixels, self.key, self.payload(height, width))

    def text(self, height: int, width: int) -> dict[str, str]:
        """The provenance text chunks about the mark, for images (or grid tiles) of this size."""
        if self.key is None:
            return {"ganforge:watermark": "off"}
        if not wm.is_markable(height, width):
            return {"ganforge:watermark": f"off (only images with sides of {wm.MIN_SIDE} to {wm.MAX_SIDE} are marked)"}
        return {
            "ganforge:watermark": "on",
            "ganforge:watermark_payload": wm.payload_hex(self.payload(height, width)),
            "ganforge:watermark_payload_from": self.source,
        }


def make_marker(setting: WatermarkSetting, identity: str, source: str = FROM_GENERATOR) -> Marker:
    """A Marker from a setting: True resolves the default key (made on first use), False is off, bytes is the key."""
    if setting is False:
        return Marker(None, identity, source)
    key = wm.resolve_key()[0] if setting is True else bytes(setting)
    if len(key) != wm.KEY_BYTES:
        raise ConfigError(f"a watermark key has {wm.KEY_BYTES} bytes; got {len(key)}")
    return Marker(key, identity, source)


def run_identity(run_dir: str | Path, config: dict[str, Any]) -> str:
    """The payload identity of a run's training grids: sha256 of the run's folder name and its config."""
    text = json.dumps(config, sort_keys=True, default=str)
    return hashlib.sha256(f"{Path(run_dir).name}\0{text}".encode()).hexdigest()
