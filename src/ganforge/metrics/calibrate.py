"""The calibration ladder: scores of real images, degraded step by step, so a user can read a number.

    python -m ganforge.metrics.calibrate --data-dir ../shared/data/mnist   # the MNIST table in docs/metrics.md
    python -m ganforge.metrics.calibrate --data fashion-mnist               # the Fashion-MNIST table
    python -m ganforge.metrics.calibrate --data stacked-mnist --data-dir ../shared/data/mnist  # Stacked MNIST
    python -m ganforge.metrics.colour_ladder                               # the emoji (colour) ladder

Floor: real training images, held out from the reference, against the test split (mnist: the 5,000
mnist-sample digits; fashion-mnist: a seeded 10,000 of its 60,000 training images). Ladder: the test
images with Gaussian pixel noise or Gaussian blur of growing strength, with one class dropped, and
copies of a few images. Every row is `evaluate(images=...)` at the default protocol.
Stacked MNIST has no ladder but three rows: a perfect generator (test digits stacked with another
seed), the stacked training set, and a collapsed set covering 100 of the 1,000 triples.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.metrics.kid import NUM_SUBSETS, SUBSET_SIZE
from ganforge.metrics.reference import REFERENCE_COUNT

log = logging.getLogger(__name__)

LADDER_DATA = ("mnist", "fashion-mnist")  # data sets with a test split, class labels and a shipped extractor
NOISE_SIGMAS = (0.05, 0.1, 0.2, 0.4)  # on the [-1, 1] pixel scale
BLUR_SIGMAS = (0.5, 1.0, 1.5, 2.0)  # pixels
# fashion-mnist's floor: as many training images as a generator's default evaluation draws, so the floor is
# scored at the same sample count (FID is biased upward at smaller counts); the subset is fixed, not the eval seed.
FLOOR_COUNT = 10_000
FLOOR_SEED = 0
DROPPED_CLASS = 9
STACKED_SEED = 7  # the "perfect generator": the test digits stacked again, with a seed other than the reference's
COLLAPSED_MODES = 100


def add_noise(images: Tensor, sigma: float, *, seed: int = 0) -> Tensor:
    """images + N(0, sigma^2) per pixel, clamped to [-1, 1]."""
    rng = torch.Generator().manual_seed(seed)
    return (images + sigma * torch.randn(images.shape, generator=rng)).clamp(-1, 1)


def blur(images: Tensor, sigma: float, *, background: float = -1.0) -> Tensor:
    """Gaussian blur of (N, C, H, W) images with std `sigma` pixels, padded with `background` (black; emoji: white)."""
    radius = max(1, int(3 * sigma + 0.5))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-(t**2) / (2 * sigma**2))
    kernel = kernel / kernel.sum()
    c = images.size(1)
    x = F.pad(images, (radius,) * 4, value=background)
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


def drop_class(images: Tensor, labels: Tensor, cls: int) -> Tensor:
    """The images whose label is not `cls`."""
    return images[labels != cls]


def copies(images: Tensor, k: int, n: int) -> Tensor:
    """n images made of copies of the first k."""
    return images[:k].repeat((n + k - 1) // k, 1, 1, 1)[:n]


def floor_images(data: str, data_dir: str | Path | None = None) -> tuple[str, Tensor]:
    """(row name, images in [-1, 1]) of the floor: real training images, none of them in the reference."""
    from ganforge.data import load_dataset, to_float

    if data == "mnist":  # the training digits at hand offline; sorted by class (evaluate subsets at random)
        sample = load_dataset("mnist-sample", split="train")
        return f"floor: mnist-sample ({len(sample):,} training digits)", to_float(sample.in_memory())
    train = load_dataset(data, split="train", data_dir=data_dir)
    count = min(FLOOR_COUNT, len(train))
    keep = torch.randperm(len(train), generator=torch.Generator().manual_seed(FLOOR_SEED))[:count].sort().values
    return f"floor: {count:,} of the {len(train):,} training images", to_float(train.take(keep))


def ladder(
    data_dir: str | Path | None,
    *,
    data: str = "mnist",
    n: int = 10_000,
    seed: int = 0,
    reference_count: int = REFERENCE_COUNT,
    kid_subsets: int = NUM_SUBSETS,
    kid_subset_size: int = SUBSET_SIZE,
) -> list[tuple[str, dict[str, Any]]]:
    """(row name, evaluate result) for the floor and every rung of `data` ("mnist" or "fashion-mnist").

    Rungs degrade the first n test images; every row is scored against the test split (reference_count
    images) with the extractor `data` selects. The default protocol gives the tables in docs/metrics.md;
    smaller counts (and a KID subset below 0.9 n, for the dropped-class row) make a quick check.
    """
    from ganforge.data import load_dataset, to_float
    from ganforge.errors import ConfigError
    from ganforge.metrics import evaluate

    if data not in LADDER_DATA:
        raise ConfigError(f"no calibration ladder for {data!r}; use one of {', '.join(LADDER_DATA)}")
    test = load_dataset(data, split="test", data_dir=data_dir)
    real, labels = to_float(test.in_memory())[:n], test.labels[:n] if test.labels is not None else None
    noun = "digits" if data == "mnist" else "images"
    rows: list[tuple[str, Tensor]] = [floor_images(data, data_dir)]
    rows += [(f"test {noun} + N(0, {s}) noise", add_noise(real, s, seed=seed)) for s in NOISE_SIGMAS]
    rows += [(f"test {noun}, blur sigma {s} px", blur(real, s)) for s in BLUR_SIGMAS]
    if labels is not None:
        cls = DROPPED_CLASS
        name = f"the {cls}s" if data == "mnist" else f"class {cls} ({test.class_names[cls]})"
        rows.append((f"test {noun} without {name}", drop_class(real, labels, DROPPED_CLASS)))
    rows.append((f"copies of 10 test {noun}", copies(real, 10, len(real))))
    rows.append((f"copies of 100 test {noun}", copies(real, 100, len(real))))
    return [
        (
            name,
            evaluate(
                images=x,
                data=data,
                data_dir=data_dir,
                n=n,
                seed=seed,
                reference_count=reference_count,
                kid_subsets=kid_subsets,
                kid_subset_size=kid_subset_size,
            ),
        )
        for name, x in rows
    ]


def collapsed_stack(images: Tensor, labels: Tensor, modes: int, n: int, *, seed: int = 0) -> tuple[Tensor, Tensor]:
    """n stacked images on only `modes` of the 1,000 triples (seeded), each channel a random digit of its class.

    images: (N, 1, H, W) uint8 digits, labels (N,). Returns (images (n, 3, H, W) uint8, the chosen triples).
    """
    from ganforge.data.stacked import NUM_CLASSES

    rng = torch.Generator().manual_seed(seed)
    chosen = torch.randperm(NUM_CLASSES, generator=rng)[:modes].sort().values
    triple = chosen[torch.randint(modes, (n,), generator=rng)]
    digits = torch.stack([triple // 100, triple // 10 % 10, triple % 10], 1)  # (n, 3)
    by_class = [torch.nonzero(labels == d).flatten() for d in range(10)]
    picks = torch.empty_like(digits)
    for d, members in enumerate(by_class):
        where = digits == d
        picks[where] = members[torch.randint(len(members), (int(where.sum()),), generator=rng)]
    return images.squeeze(1)[picks].contiguous(), chosen


def stacked_rows(data_dir: str | Path | None, *, n: int = 26_000, seed: int = 0) -> list[tuple[str, dict[str, Any]]]:
    """(row name, evaluate result) of the Stacked MNIST calibration, each scored as `ganforge eval` does."""
    from ganforge.data import load_dataset, to_float
    from ganforge.data.stacked import stack_digits
    from ganforge.metrics import evaluate

    test = load_dataset("mnist", split="test", data_dir=data_dir)
    assert test.labels is not None
    perfect = stack_digits(test.in_memory(), test.labels, n, seed=STACKED_SEED)[0]
    train = load_dataset("stacked-mnist", split="train", data_dir=None)  # offline: stacked from mnist-sample
    collapsed, _ = collapsed_stack(test.in_memory(), test.labels, COLLAPSED_MODES, n, seed=seed)
    rows = [
        (f"perfect: test digits stacked with seed {STACKED_SEED}", perfect),
        (f"the stacked training set ({train.name}, {len(train):,} images)", train.in_memory()),
        (f"collapsed: test digits on {COLLAPSED_MODES} of the triples", collapsed),
    ]
    return [
        (name, evaluate(images=to_float(x), data="stacked-mnist", data_dir=data_dir, n=n, seed=seed))
        for name, x in rows
    ]


def stacked_markdown(rows: list[tuple[str, dict[str, Any]]]) -> str:
    columns = ["images", "n", "stacked modes", "stacked KL", "confident", "modes covered", "FID", "precision"]
    columns += ["recall"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name, r in rows:
        lines.append(
            f"| {name} | {r['n_samples']:,} | {r['stacked_modes']:,} | {r['stacked_kl']:.3f} | "
            f"{r['stacked_confident']:.3f} | {r['modes_covered']:,} | {r['fid']:.2f} | {r['precision']:.3f} | "
            f"{r['recall']:.3f} |"
        )
    return "\n".join(lines)


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
    parser.add_argument(
        "--data",
        choices=(*LADDER_DATA, "stacked-mnist"),
        default="mnist",
        help="the data set whose ladder to score",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="folder with the data set's IDX files (mnist: at least the t10k test split); fashion-mnist is also "
        "found where Debian's dataset-fashion-mnist installs it",
    )
    parser.add_argument("--n", type=int, default=None, help="samples a row (default 10,000; stacked-mnist 26,000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    t0 = time.perf_counter()
    if args.data == "stacked-mnist":
        rows = stacked_rows(args.data_dir, n=args.n or 26_000, seed=args.seed)
        table = stacked_markdown(rows)
    else:
        rows = ladder(args.data_dir, data=args.data, n=args.n or 10_000, seed=args.seed)
        table = markdown(rows)
    log.info("%s calibration: %d rows in %.0f s", args.data, len(rows), time.perf_counter() - t0)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
