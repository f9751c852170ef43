"""A keyed invisible watermark: spread-transform dither modulation in the 8x8 block DCT of the luminance.

Each of N bits owns a secret unit direction among the mid-frequency coefficients (2 <= u + v <= 4)
of the image's 8x8 blocks, the blocks JPEG quantizes. Embedding moves the image's projection on each
direction onto the nearest point of that bit's lattice (step `delta`, offset by a secret dither;
Chen & Wornell 2001's quantization index modulation, spread-transform form), so the image's own
content never interferes with a bit. The change is the smallest one within 0..255 (optionally with the
black ground next to strokes made dear: perceptual masking), aimed against the error JPEG 75 would
make. Luminance carries the mark: grey and RGB alike.

N = payload bits (the generator's sha256) + check bits (from the key alone). Decoding is blind.
Not marked with this key, each projection's phase on its lattice is uniform, so the summed evidence
(2 cos(phase - pi b) for a check bit b, cos(2 phase) for a payload bit) has a known distribution and
an exact tail: the p-value. The check bits read right are the reading's bit accuracy.

The decoder also tries 1-pixel shifts and brightness gains (the p-value is Bonferroni-corrected for
every alignment tried) and reads ganforge's grids (square tiles of 28, 32, 64 or 128 pixels, 2-pixel
padding), adding the evidence of all tiles. docs/responsible-use.md has the measurements.
"""

from __future__ import annotations

import hashlib
import io
import math
from dataclasses import dataclass

import numpy as np
from PIL import Image

from ganforge.errors import ConfigError
from ganforge.watermark_code import Code, code_for, cos_tail, lattice_targets, solve
from ganforge.watermark_keys import KEY_BYTES, existing_key, new_key, read_key, resolve_key, write_key

__all__ = [
    "ALPHA",
    "KEY_BYTES",
    "MIN_SIDE",
    "Reading",
    "capacity",
    "decode",
    "embed",
    "existing_key",
    "is_markable",
    "mark_batch",
    "new_key",
    "payload_bits",
    "payload_hex",
    "read_key",
    "resolve_key",
    "write_key",
]

# The false-positive rate of `found` (the Bonferroni-corrected tail must be at most this). The check is
# "found on none of the 20,000 MNIST and Fashion-MNIST test images, as PNG and after JPEG 75": 40,000
# readings, so 1e-5 still allows 0.4 false finds on average (it found 1, at p = 3.0e-6); 1e-6 allows 0.04.
ALPHA = 1e-6
MIN_SIDE = 24  # smaller images have too few 8x8 blocks to hide 48 bits in
MAX_SIDE = 256  # the code for a size holds N directions over all its blocks; ganforge writes <= 128
TARGET_MSE = 4.5  # sets delta: the mean squared change before clipping and aiming (~38 dB after both)
NEAR_PX = 2  # perceptual masking (`embed(..., near_ground_cost=...)`): the black ground this close to a stroke
JPEG_AIMS = (75,)  # informed embedding: the JPEG qualities whose error the mark leans against
AIM_LIMIT = 0.2  # at most this many deltas off the lattice point (the decision boundary is at 0.25)
AIM_ROUNDS = 1
CHECK_BITS = 16  # key-derived bits beside the payload
# A check bit's evidence counts twice a payload bit's: after JPEG 75, cos(phase - pi b) keeps ~0.8 of its
# value and cos(2 phase) (double the phase noise) ~0.45, and both have the null variance 1/2, so the
# best linear weights are about 1.8 : 1 (found after JPEG 75 on the tuning seed: 0.947 -> ~0.98).
CHECK_WEIGHT = 2
SATURATED_GUESS = 0.8  # a brightened pixel clipped at 255 came from this far up its possible range
GRID_TILES = (28, 32, 64, 128)  # ganforge's image sizes, as tiles of make_grid (2-pixel padding)
GRID_PAD = 2
SHIFTS = tuple((dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1))
GAINS = tuple(1 + k / 100 for k in range(-14, 15))
IDENTITY_SHARE = 0.8  # of the false-positive budget, for the image as it is (no shift, no gain)
_LUMA = np.array([0.299, 0.587, 0.114])


@dataclass(frozen=True)
class Reading:
    """What `decode` finds: whether the mark is there, its check-bit accuracy, the payload and its p-value."""

    found: bool
    bit_accuracy: float
    payload: str
    p_value: float
    n_bits: int


def capacity(height: int, width: int) -> int:
    """Payload bits an image of this size carries: 48 from 64x64 up, else 32."""
    return 48 if min(height, width) >= 64 else 32


def check_bits(height: int, width: int) -> int:
    """Key-derived check bits beside the payload: they measure the bit accuracy and add to the evidence."""
    return CHECK_BITS


def is_markable(height: int, width: int) -> bool:
    """Whether an image of this size can carry the mark: sides from MIN_SIDE to MAX_SIDE (ganforge's are <= 128)."""
    return MIN_SIDE <= min(height, width) and max(height, width) <= MAX_SIDE


def payload_bits(generator_sha256: str, n_bits: int) -> np.ndarray:
    """The first n_bits of a generator's sha256 (hex) as a uint8 0/1 array: the payload names the model."""
    try:
        digest = bytes.fromhex(generator_sha256)
    except ValueError:
        digest = b""
    if len(digest) != 32:  # not a sha256: hash the text, so any identity gives a stable payload
        digest = hashlib.sha256(generator_sha256.encode("utf-8")).digest()
    if not 0 < n_bits <= 256:
        raise ConfigError(f"payload bits must be in 1..256; got {n_bits}")
    return np.unpackbits(np.frombuffer(digest, dtype=np.uint8))[:n_bits].copy()


def payload_hex(bits: np.ndarray) -> str:
    """0/1 bits -> hex, most significant first (a whole number of hex digits; bits padded with 0)."""
    bits = np.asarray(bits, dtype=np.uint8).reshape(-1)
    padded = np.concatenate([bits, np.zeros(-len(bits) % 8, dtype=np.uint8)])
    return np.packbits(padded).tobytes().hex()[: math.ceil(len(bits) / 4)]


def _code(key: bytes, height: int, width: int) -> Code:
    return code_for(key, height, width, capacity(height, width), check_bits(height, width), TARGET_MSE)


def _as_hwc(pixels: np.ndarray) -> np.ndarray:
    if pixels.dtype != np.uint8:
        raise ConfigError(f"watermark works on uint8 pixels; got {pixels.dtype}")
    if pixels.ndim == 2:
        return pixels[:, :, None]
    if pixels.ndim == 3 and pixels.shape[2] in (1, 3):
        return pixels
    raise ConfigError(f"watermark works on (H, W), (H, W, 1) or (H, W, 3) pixels; got shape {pixels.shape}")


def _luma(x: np.ndarray) -> np.ndarray:
    """(..., H, W, C) -> (..., H, W): the grey level, or Rec. 601 luma for RGB."""
    return x[..., 0] if x.shape[-1] == 1 else x @ _LUMA


def embed(pixels: np.ndarray, key: bytes, payload: np.ndarray, *, near_ground_cost: float = 1.0) -> np.ndarray:
    """Mark uint8 pixels (H, W), (H, W, 1) or (H, W, 3) with `payload` (capacity(H, W) bits) under `key`.

    The same change goes into every colour channel, so it lives in luminance. The change is the
    smallest within 0..255 (MNIST's black ground can only get brighter), aimed against JPEG 75's error.
    near_ground_cost > 1 makes a change of the black ground next to strokes that much dearer (perceptual
    masking, `pixel_cost`): a lower FID for marked samples at a lower PSNR, the same robustness
    (docs/responsible-use.md measures both).
    """
    if not near_ground_cost > 0:
        raise ConfigError(f"near_ground_cost must be a positive number (1: no masking); got {near_ground_cost}")
    x0 = _as_hwc(pixels)
    height, width, _ = x0.shape
    if not is_markable(height, width):
        raise ConfigError(
            f"an image of {height}x{width} cannot be marked; the watermark needs sides of {MIN_SIDE} to {MAX_SIDE}"
        )
    code = _code(key, height, width)
    payload = np.asarray(payload, dtype=np.uint8).reshape(-1)
    if len(payload) != capacity(height, width):
        raise ConfigError(
            f"a {height}x{width} image carries {capacity(height, width)} payload bits; got {len(payload)}"
        )
    bits = np.zeros(len(code.dither), dtype=np.uint8)
    bits[code.is_check], bits[~code.is_check] = code.check, payload
    offset = code.dither + bits * code.delta / 2  # each bit's lattice: offset + k delta
    x = x0.astype(np.float64)
    y = code.project(_luma(x))
    # 1. The cheapest change that puts every projection on its lattice point; it is the same in every
    # channel, so it must keep every channel inside 0..255.
    low, high = -x.min(axis=2), 255 - x.max(axis=2)
    cost = pixel_cost(x, near_ground_cost)
    target = lattice_targets(code, y, offset, low, high, cost)
    change, weights = solve(code, target - y, (low, high), cost, None)
    # 2. Informed embedding: JPEG's error on these projections is mostly the host's own (its ringing,
    # clipped at black and white), so it can be known before anyone compresses. Aim each projection
    # at the middle of where the image lands as written and after JPEG at the qualities in JPEG_AIMS
    # (each landing counted from its nearest point of the bit's lattice), never more than AIM_LIMIT
    # delta off its lattice point, so the file as written stays exact.
    for _ in range(AIM_ROUNDS):
        marked = np.round(x + change[:, :, None]).clip(0, 255).astype(np.uint8)
        lands = [marked] + [_jpeg_roundtrip(marked, quality) for quality in JPEG_AIMS]
        at = np.stack([code.project(_luma(image.astype(np.float64))) for image in lands])  # (1 + Q, N)
        off = (at - target + code.delta / 2) % code.delta - code.delta / 2
        aim = np.clip(off[0] - (off.min(axis=0) + off.max(axis=0)) / 2, -AIM_LIMIT * code.delta, AIM_LIMIT * code.delta)
        change, weights = solve(code, target + aim - y, (low, high), cost, weights)
    out = np.round(x + change[:, :, None]).clip(0, 255).astype(np.uint8)
    return out.reshape(pixels.shape)


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    """(H, W) bool grown by `radius` pixels in every direction (a square neighbourhood)."""
    height, width = mask.shape
    for _ in range(radius):
        padded = np.pad(mask, 1)
        mask = np.any([padded[1 + dy : 1 + dy + height, 1 + dx : 1 + dx + width] for dy, dx in SHIFTS], axis=0)
    return mask


def pixel_cost(x: np.ndarray, near_ground_cost: float) -> np.ndarray:
    """(H, W, C) pixels -> (H, W) cost of changing each one: perceptual masking for the embedding's solver.

    Measured with the mnist extractor's FID on mnist-hq samples (docs/responsible-use.md): a change on
    the strokes costs FID almost nothing, the same change on the black ground within 2 pixels of a stroke
    (it reshapes the stroke's edge) costs the most, the ground further out in between. So the ground near
    strokes costs near_ground_cost, every other pixel 1 (all of them, on images without black ground).
    """
    ground = x.max(axis=2) <= 0
    near = ground & _dilate(~ground, NEAR_PX)
    return np.where(near, near_ground_cost, 1.0)


def _jpeg_roundtrip(pixels: np.ndarray, quality: int) -> np.ndarray:
    """(H, W, C) uint8 through Pillow's JPEG encoder and decoder."""
    buf = io.BytesIO()
    Image.fromarray(pixels[..., 0] if pixels.shape[2] == 1 else pixels).save(buf, format="JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        out = np.asarray(im)
    return out.reshape(pixels.shape)


def mark_batch(pixels: np.ndarray, key: bytes, payload: np.ndarray, *, near_ground_cost: float = 1.0) -> np.ndarray:
    """Mark each image of a (N, H, W, C) uint8 batch (the tiles of a grid are marked one by one)."""
    if not len(pixels):
        return pixels.copy()
    return np.stack([embed(p, key, payload, near_ground_cost=near_ground_cost) for p in pixels])


def _layouts(height: int, width: int) -> list[tuple[int, int, list[tuple[int, int]]]]:
    """Ways to read the image: whole, or as a grid of square tiles with 2-pixel padding (tile h, w, corners).

    A grid fills the image, or (a --per-class grid, its rows named in a margin on the left) fills its
    height and sits against the right edge: then as many columns as fit are read from the right.
    """
    out = []
    if is_markable(height, width):
        out.append((height, width, [(0, 0)]))
    for side in GRID_TILES:
        step = side + GRID_PAD
        rows, cols = (height - GRID_PAD) / step, (width - GRID_PAD) // step
        if not rows.is_integer() or cols < 1 or rows * cols < 2 or not is_markable(side, side):
            continue
        left = width - GRID_PAD - cols * step  # 0 for a grid that fills the image; the margin's width else
        corners = [(GRID_PAD + r * step, left + GRID_PAD + c * step) for r in range(int(rows)) for c in range(cols)]
        out.append((side, side, corners))
    return out


def _tiles(luma: np.ndarray, size: tuple[int, int], corners: list[tuple[int, int]], dy: int, dx: int) -> np.ndarray:
    """(T, h, w) windows at corners + (dy, dx); outside the image reads as 0."""
    h, w = size
    padded = np.pad(luma, 1)
    return np.stack(
        [padded[1 + top + dy : 1 + top + dy + h, 1 + left + dx : 1 + left + dx + w] for top, left in corners]
    )


def _read_layout(luma: np.ndarray, key: bytes, layout: tuple[int, int, list[tuple[int, int]]]) -> tuple[float, Reading]:
    """The best alignment of one layout: (corrected p-value, reading).

    The evidence is the sum, over tiles and bits, of how close each projection lies to its lattice:
    CHECK_WEIGHT cos(phase - pi b) for a check bit b (its lattice is known), cos(2 phase) for a payload
    bit (near either lattice). Not marked, every phase is uniform, so each term is (a multiple of) cos(U)
    and the sum's tail is exact.
    """
    h, w, corners = layout
    code = _code(key, h, w)
    n_trials = len(SHIFTS) * len(GAINS)
    gains = np.array(GAINS)
    n_check, n_payload = len(corners) * int(code.is_check.sum()), len(corners) * int((~code.is_check).sum())
    # The untouched alignment (files as written, re-saved, noisy) gets IDENTITY_SHARE of the false-positive
    # budget; the shifted and brightened alignments share the rest.
    identity = np.array([dy == dx == 0 and gain == 1 for dy, dx in SHIFTS for gain in GAINS]).reshape(len(SHIFTS), -1)
    best: tuple[float, np.ndarray] | None = None
    for (dy, dx), is_identity in zip(SHIFTS, identity, strict=True):
        tiles = _tiles(luma, (h, w), corners, dy, dx)
        y = code.project(tiles)[None] / gains[:, None, None]  # (G, T, N)
        # A brightened image clipped its brightest pixels at 255: read each as having come from near the
        # top of the range [255 / gain, 255] (SATURATED_GUESS of the way up) instead of 255 / gain.
        saturated = code.project((tiles >= 254.5).astype(np.float64))  # (T, N)
        y += 255 * SATURATED_GUESS * np.maximum(0, 1 - 1 / gains)[:, None, None] * saturated[None]
        phase = 2 * np.pi * (y - code.dither) / code.delta  # (G, T, N)
        check_term = np.cos(phase[..., code.is_check] - np.pi * code.check)
        payload_term = np.cos(2 * phase[..., ~code.is_check])
        statistic = CHECK_WEIGHT * check_term.sum(axis=(1, 2)) + payload_term.sum(axis=(1, 2))  # (G,)
        factor = np.where(is_identity, 1 / IDENTITY_SHARE, (n_trials - 1) / (1 - IDENTITY_SHARE))
        corrected = factor * cos_tail(statistic, n_payload, n_check, CHECK_WEIGHT)
        g = int(np.argmin(corrected))
        if best is None or corrected[g] < best[0]:
            best = (float(corrected[g]), np.cos(phase[g]).sum(axis=0))
    assert best is not None
    corrected, soft = best
    bits = (soft < 0).astype(np.uint8)  # tiles' evidence added, bit by bit
    payload = bits[~code.is_check]
    accuracy = float(np.mean(bits[code.is_check] == code.check))
    reading = Reading(
        found=False, bit_accuracy=accuracy, payload=payload_hex(payload), p_value=corrected, n_bits=len(payload)
    )
    return corrected, reading


def decode(pixels: np.ndarray, key: bytes) -> Reading:
    """Read the mark blindly (no payload needed): found, check-bit accuracy, payload hex, corrected p-value.

    `found` is p_value <= ALPHA, where p_value is the exact null tail of the summed evidence (check bits
    counted twice) at the best alignment, multiplied out for every alignment and grid layout tried (Bonferroni), so an
    unmarked image, or a marked one read with another key, is found with probability at most ALPHA.
    """
    luma = _luma(_as_hwc(pixels).astype(np.float64))
    layouts = _layouts(*luma.shape)
    if not layouts:
        n = capacity(*luma.shape)
        return Reading(found=False, bit_accuracy=0.0, payload="", p_value=1.0, n_bits=n)
    readings = [_read_layout(luma, key, layout) for layout in layouts]
    corrected, reading = min(readings, key=lambda r: r[0])
    p_value = min(1.0, corrected * len(layouts))
    return Reading(
        found=p_value <= ALPHA, bit_accuracy=reading.bit_accuracy, payload=reading.payload, p_value=p_value,
        n_bits=reading.n_bits,
    )  # fmt: skip
