"""The watermark's secret code: key-derived directions in 8x8 block DCT bands, the embedding solver, the null tail.

watermark.py is the public side (embed, decode); this module holds the mathematics they share.
"""

from __future__ import annotations

import functools
import hashlib
import math
from dataclasses import dataclass

import numpy as np

from ganforge.errors import ConfigError
from ganforge.watermark_keys import KEY_BYTES

BINS = 64  # grid of the exact null distribution (steps of 1/64 a term)


def dct_matrix(n: int) -> np.ndarray:
    """Orthonormal DCT-II matrix (n, n): row k is the k-th cosine."""
    k = np.arange(n)[:, None]
    m = np.cos(np.pi * (2 * np.arange(n)[None, :] + 1) * k / (2 * n)) * np.sqrt(2 / n)
    m[0] /= np.sqrt(2)
    return m


_C8 = dct_matrix(8)


BLOCK = 8
BAND_LOW, BAND_HIGH = 2, 4
# The mark's coefficients in each 8x8 block: JPEG quantizes each block coefficient on its own, so a
# block-aligned mark sees only these coefficients' error. Low ones get JPEG's finest steps, but on
# MNIST-like images (black ground, white strokes) the lowest carry most of the error that clipping
# JPEG's ringing at 0 and 255 makes; 2 <= u + v <= 4 had the least error at quality 75 and 50.
_BAND = [(u, v) for u in range(BLOCK) for v in range(BLOCK) if BAND_LOW <= u + v <= BAND_HIGH]
_U, _V = (np.array(axis) for axis in zip(*_BAND, strict=True))


@dataclass(frozen=True, eq=False)
class Code:
    """The secret code for one image size: directions, dithers, lattice step and check bits."""

    blocks: tuple[int, int]  # whole 8x8 blocks down and across (the mark lives in these)
    directions: np.ndarray  # (N, blocks * len(_BAND)), orthonormal rows
    dither: np.ndarray  # (N,)
    delta: float
    is_check: np.ndarray  # (N,) bool: check bit (True) or payload bit
    check: np.ndarray  # (S,) 0/1: the check bits' values

    def project(self, luma: np.ndarray) -> np.ndarray:
        """(..., h, w) luma -> (..., N) projections on the secret directions."""
        bh, bw = self.blocks
        x = luma[..., : bh * BLOCK, : bw * BLOCK].reshape(*luma.shape[:-2], bh, BLOCK, bw, BLOCK)
        blocks = np.swapaxes(x, -3, -2)  # (..., bh, bw, 8, 8)
        coefs = (_C8 @ blocks @ _C8.T)[..., _U, _V]  # (..., bh, bw, band): each block's 2-D DCT
        return coefs.reshape(*coefs.shape[:-3], -1) @ self.directions.T

    def pattern(self, coefs: np.ndarray, height: int, width: int) -> np.ndarray:
        """(N,) changes of the projections -> (height, width) pixel change (the minimum-norm one)."""
        bh, bw = self.blocks
        band = np.zeros((bh, bw, BLOCK, BLOCK))
        band[..., _U, _V] = (coefs @ self.directions).reshape(bh, bw, len(_BAND))
        x = np.swapaxes(_C8.T @ band @ _C8, 1, 2).reshape(bh * BLOCK, bw * BLOCK)  # inverse DCT of each block
        out = np.zeros((height, width))
        out[: bh * BLOCK, : bw * BLOCK] = x
        return out


@functools.lru_cache(maxsize=32)
def code_for(key: bytes, height: int, width: int, n_payload: int, n_check: int, target_mse: float) -> Code:
    """The code that `key` gives images of this size: n_payload + n_check bits, about target_mse of change."""
    if len(key) != KEY_BYTES:
        raise ConfigError(f"a watermark key has {KEY_BYTES} bytes; got {len(key)}")
    n = n_payload + n_check
    seed = hashlib.sha256(b"ganforge-watermark-v1\0" + key + f"\0{height}x{width}".encode()).digest()
    rng = np.random.Generator(np.random.PCG64(int.from_bytes(seed, "big")))
    blocks = (height // BLOCK, width // BLOCK)
    # 1. Secret directions: random Gaussian mixtures of the band's coefficients, orthonormalized.
    q, _ = np.linalg.qr(rng.standard_normal((blocks[0] * blocks[1] * len(_BAND), n)))
    directions = q.T.copy()  # (N, band): orthonormal rows
    # 2. The lattice step, from the target distortion: a bit moves its projection by delta^2 / 12 on average.
    delta = math.sqrt(12 * target_mse * height * width / n)
    dither = rng.uniform(0, delta, n)
    # 3. Check bits: half agree with what a blank image (all projections 0) decodes to and half disagree,
    # so a flat or nearly flat image scores S/2 instead of whatever the key happened to give it.
    is_check = np.zeros(n, dtype=bool)
    is_check[rng.permutation(n)[:n_check]] = True
    blank = bits_from(np.zeros(n), dither, delta)[is_check]
    flips = np.zeros(n_check, dtype=np.uint8)
    flips[rng.permutation(n_check)[: n_check // 2]] = 1
    return Code(
        blocks=blocks, directions=directions, dither=dither, delta=delta, is_check=is_check, check=blank ^ flips
    )


def soft(projections: np.ndarray, dither: np.ndarray, delta: float) -> np.ndarray:
    """+1 on bit 0's lattice (dither + k delta), -1 on bit 1's (half a step off), cosine in between."""
    return np.cos(2 * np.pi * (projections - dither) / delta)


def bits_from(projections: np.ndarray, dither: np.ndarray, delta: float) -> np.ndarray:
    return (soft(projections, dither, delta) < 0).astype(np.uint8)


def lattice_targets(
    code: Code, y: np.ndarray, offset: np.ndarray, low: np.ndarray, high: np.ndarray, cost: np.ndarray
) -> np.ndarray:
    """For each bit, the lattice point below or above its projection, whichever is cheaper to reach.

    Reaching it costs about distance^2 / room, where room is the share of the bit's pattern that
    can move that way without leaving 0..255 (on a black background, a pattern can only go up),
    each pixel counted by 1 / its cost (see `solve`).
    """
    patterns = pixel_patterns(code, *low.shape)
    below = offset + code.delta * np.floor((y - offset) / code.delta)
    can_up = (patterns > 0) & (high.reshape(-1) > 0) | (patterns < 0) & (low.reshape(-1) < 0)
    can_down = (patterns < 0) & (high.reshape(-1) > 0) | (patterns > 0) & (low.reshape(-1) < 0)
    reach = patterns**2 / cost.reshape(-1)
    room_up = (reach * can_up).sum(axis=1) + 1e-3
    room_down = (reach * can_down).sum(axis=1) + 1e-3
    cost_up = (below + code.delta - y) ** 2 / room_up
    cost_down = (y - below) ** 2 / room_down
    return np.where(cost_up < cost_down, below + code.delta, below)


def solve(
    code: Code,
    wanted: np.ndarray,
    bounds: tuple[np.ndarray, np.ndarray],
    cost: np.ndarray,
    start: np.ndarray | None,
) -> tuple[np.ndarray, np.ndarray]:
    """The cheapest change within bounds = (low, high), each (h, w), that moves the projections by `wanted`.

    Cheapest: the least sum of cost * change^2 (cost (h, w) > 0, perceptual masking: a pixel of cost c
    moves 1/c as much). This least-squares problem with box constraints has its solution of the form
    clip(P^T w / cost, low, high) (P: the directions as pixel patterns; the KKT conditions); w comes from
    semi-smooth Newton steps on the free pixels, with backtracking on the dual.
    """
    low, high = (b.reshape(-1) for b in bounds)
    inverse_cost = 1 / cost.reshape(-1)
    patterns = pixel_patterns(code, *bounds[0].shape)  # (N, h * w)

    def dual(w: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        """The dual objective (concave in w), its gradient (the residual) and the primal change."""
        u = w @ patterns
        change = np.clip(u * inverse_cost, low, high)
        value = w @ wanted + 0.5 * (change * change) @ cost.reshape(-1) - u @ change
        return float(value), wanted - patterns @ change, change

    weights = np.zeros_like(wanted) if start is None else start.copy()
    value, residual, change = dual(weights)
    for _ in range(30):
        if np.abs(residual).max() < 0.01 * code.delta:
            break
        u = (weights @ patterns) * inverse_cost
        is_free = (u > low) & (u < high)
        free = patterns[:, is_free]
        step = np.linalg.solve((free * inverse_cost[is_free]) @ free.T + 1e-2 * np.eye(len(wanted)), residual)
        for _ in range(12):  # backtracking: Newton's step on the free pixels, halved until the dual rises
            trial = dual(weights + step)
            if trial[0] >= value + 1e-4 * float(step @ residual):
                break
            step = step / 2
        else:
            trial = dual(weights + residual)  # a plain gradient step (the gradient is 1-Lipschitz)
            step = residual
        weights = weights + step
        value, residual, change = trial
    return change.reshape(bounds[0].shape), weights


@functools.lru_cache(maxsize=8)
def pixel_patterns(code: Code, height: int, width: int) -> np.ndarray:
    """The secret directions as (N, h * w) pixel patterns (orthonormal rows)."""
    n = len(code.dither)
    return np.stack([code.pattern(np.eye(n)[i], height, width).reshape(-1) for i in range(n)])


@functools.lru_cache(maxsize=64)
def tail_table(n: int, n_heavy: int = 0, weight: int = 1) -> np.ndarray:
    """An upper bound on P(S >= j / BINS - m), S = the sum of n iid cos(U) plus `weight` times the sum of
    n_heavy more, U uniform on [0, 2 pi), m = n + weight n_heavy, for j = 0 .. 2 m BINS.

    cos(U) is replaced by a variable that is never smaller (the largest cosine on each of 4096 arcs,
    rounded up to the grid 1/BINS), so the sum (with positive weights) dominates the real one and the
    tail is conservative.
    """
    arcs = 4096
    edges = 2 * np.pi * np.arange(arcs + 1) / arcs
    upper = np.maximum(np.cos(edges[:-1]), np.cos(edges[1:]))
    upper[0] = upper[-1] = 1.0  # the arcs that hold the cosine's maximum
    steps = np.ceil(upper * BINS - 1e-9).astype(int) + BINS  # 0 .. 2 BINS
    pmf = np.bincount(steps, minlength=2 * BINS + 1) / arcs
    heavy = np.zeros(2 * weight * BINS + 1)
    heavy[::weight] = pmf  # weight cos(U), on the same grid
    length = 2 * BINS * (n + weight * n_heavy) + 1
    size = 1 << int(np.ceil(np.log2(length)))
    total = np.fft.irfft(np.fft.rfft(pmf, size) ** n * np.fft.rfft(heavy, size) ** n_heavy, size)[:length]
    total = np.clip(total, 0, None)
    return np.minimum(1.0, np.cumsum(total[::-1])[::-1])


def cos_tail(statistic: np.ndarray, n: int, n_heavy: int = 0, weight: int = 1) -> np.ndarray:
    """P(sum of n iid cos(U) + weight * sum of n_heavy more >= statistic) under "not marked with this key"
    (a conservative bound), elementwise."""
    table = tail_table(n, n_heavy, weight)
    j = np.floor(np.asarray(statistic) * BINS).astype(int) + (n + weight * n_heavy) * BINS
    return np.where(j >= len(table), 0.0, table[np.clip(j, 0, len(table) - 1)])
