"""The calibration ladder: scores of real digits, degraded step by step, so a user can read a number.

    python -m ganforge.metrics.calibrate --data-dir ../shared/data/mnist   # prints the table in docs/metrics.md

Floor: the 5,000 mnist-sample training digits (held out from the reference) against the MNIST test
split. Ladder: the test digits with Gaussian pixel noise or Gaussian blur of growing strength, with
one class dropped, and copies of a few digits. Every row is `evaluate(images=...)` at the default
protocol.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

NOISE_SIGMAS = (0.05, 0.1, 0.2, 0.4)  # on the [-1, 1] pixel scale
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0)  # pixels


def add_noise(images: Tensor, sigma: float, *, seed: int = 0) -> Tensor:
    """images + N(0, sigma^2) per pixel, clamped to [-1, 1]."""
    rng = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=rng)).clamp(-1, 1)


def blur(images: Tensor, sigma: float) -> Tensor:
    """Gaussian blur of (N, C, H, W) images with std `sigma` pixels (background-padded)."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.size(1)
    x = F.pad(images, (radius,) * 4, value=-1.0)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def drop_class(images: Tensor, labels: Tensor, cls: int) -> Tensor:
    """The images whose label is not `cls`."""
    return images[labels != cls]


def copies(images: Tensor, k: int, n: int) -> Tensor:
    """n images made of copies of the first k."""
    return images[:k].repeat((n + k - 1) // k, 1, 1, 1)[:n]


def ladder(data_dir: str | Path | None, *, n: int = 10_000, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(row name, evaluate result) for the floor and every rung, against the MNIST test split."""
    from ganforge.data import load_dataset, to_float
    from ganforge.metrics import evaluate

    test = load_dataset("mnist", split="test", data_dir=data_dir)
    real, labels = to_float(test.images)[:n], test.labels[:n] if test.labels is not None else None
    sample = load_dataset("mnist-sample", split="train")
    floor = to_float(sample.images)  # sorted by class: evaluate() draws a seeded random subset when n is smaller
    rows: list[tuple[str, Tensor]] = [(f"floor: mnist-sample ({len(sample):,} training digits)", floor)]
    rows += [(f"test digits + N(0, {s}) noise", add_noise(real, s, seed=seed)) for s in NOISE_SIGMAS]
    rows += [(f"test digits, blur sigma {s} px", blur(real, s)) for s in BLUR_SIGMAS]
    if labels is not None:
        rows.append(("test digits without the 9s", drop_class(real, labels, 9)))
    rows.append(("copies of 10 test digits", copies(real, 10, len(real))))
    rows.append(("copies of 100 test digits", copies(real, 100, len(real))))
    return [(name, evaluate(images=x, data="mnist", data_dir=data_dir, n=n, seed=seed)) for name, x in rows]


def markdown(rows: list[tuple[str, dict[str, Any]]]) -> str:
    columns = ["images", "n", "FID", "KID (x1000)", "precision", "recall", "density", "coverage"]
    columns += ["classifier score", "modes", "mode KL"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['n_samples']:,} | {r['fid']:.2f} | {1000 * r['kid']:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} | {r['density']:.3f} | {r['coverage']:.3f} | {r['classifier_score']:.2f} | "
            f"{r['modes_covered']}/{r['num_modes']} | {r['mode_kl']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganforge.metrics.calibrate", description=__doc__)
    parser.add_argument("--data-dir", default=None, help="folder with the MNIST test split (t10k IDX files)")
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    print(markdown(ladder(args.data_dir, n=args.n, seed=args.seed)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
