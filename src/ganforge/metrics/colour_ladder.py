"""The emoji calibration ladder: the held-out floor, then the same emoji damaged step by step, on the colour extractor.

    OMP_NUM_THREADS=1 python -m ganforge.metrics.colour_ladder     # the table in docs/colour.md

Every row is `evaluate(images=..., data="emoji")` against the 367 test-split emoji, so it reads as a
generator's eval.json does. The floor is the 3,288 training-split emoji: real emoji, none of them (nor
any skin tone or hair variant of them) in the reference. Each rung damages the floor's images, not the
reference's own: the test split is so small that a rung built on it would sit next to its own originals
and score below the floor. Then the FID of each row is recomputed against 200 bootstrap resamples of
the reference, which shows how much the 367-image reference alone moves the numbers.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganforge.metrics.calibrate import add_noise, blur

NOISE_SIGMAS = (0.05, 0.1, 0.2)
BLUR_SIGMA = 1.0  # pixels at 64x64
HUE_DEGREES = 30.0
ONE_GROUP = "Smileys & Emotion"
ONE_TONE = 3  # medium skin tone (U+1F3FD)
BOOTSTRAPS = 200
BOOTSTRAP_SEED = 0


def rotate_hue(images: Tensor, degrees: float) -> Tensor:
    """(N, 3, H, W) RGB in [-1, 1] with every pixel's HSV hue turned by `degrees` (saturation, value kept)."""
    rgb = (images + 1) / 2
    value, argmax = rgb.max(1)
    chroma = value - rgb.min(1).values
    r, g, b = rgb.unbind(1)
    safe = torch.where(chroma > 0, chroma, torch.ones_like(chroma))
    hue = torch.where(argmax == 1, (b - r) / safe + 2, (r - g) / safe + 4)
    hue = torch.where(argmax == 0, ((g - b) / safe) % 6, hue)
    hue = (hue + degrees / 60) % 6  # in sixths of a turn
    # HSV -> RGB: each channel is value - chroma * clamp(min(k, 4 - k), 0, 1), k = (n + hue) mod 6
    out = [value - chroma * torch.clamp(torch.minimum(k, 4 - k), 0, 1) for k in ((n + hue) % 6 for n in (5, 3, 1))]
    return torch.stack(out, 1) * 2 - 1


def one_tone(codepoints: list[tuple[int, ...]], tone: int = ONE_TONE) -> list[int]:
    """For each emoji, the index of its variant with every skin tone set to `tone` (itself when it has none)."""
    from ganforge.data.emoji import SKIN_TONES

    index = {cps: i for i, cps in enumerate(codepoints)}
    modifier = SKIN_TONES.start + tone - 1
    out = []
    for i, cps in enumerate(codepoints):
        toned = tuple(modifier if cp in SKIN_TONES else cp for cp in cps)
        out.append(index.get(toned, i))
    return out


def repeat_to(images: Tensor, n: int) -> Tensor:
    """n images made by repeating `images` in order."""
    return images.repeat((n + len(images) - 1) // len(images), 1, 1, 1)[:n]


def rows_images() -> list[tuple[str, Tensor]]:
    """(row name, images in [-1, 1]) of the floor and every rung, at 64x64."""
    from ganforge.data import emoji, to_float

    found = emoji.load_set(64)
    train = np.flatnonzero(found.mask("train"))
    floor = to_float(torch.from_numpy(found.images[train])).float()
    n = len(train)
    entries = [found.entries[i] for i in train]
    swap = one_tone([e.codepoints for e in entries])
    toned = sum(e.tone > 0 for e in entries)
    group = torch.tensor([e.group == ONE_GROUP for e in entries])
    subset = torch.randperm(n, generator=torch.Generator().manual_seed(0))[:2_000].sort().values
    return [
        (f"floor: the {n:,} training-split emoji", floor),
        ("floor, a random 2,000 of them", floor[subset]),
        *[(f"floor + N(0, {s}) noise", add_noise(floor, s)) for s in NOISE_SIGMAS],
        (f"floor, blur sigma {BLUR_SIGMA:g} px", blur(floor, BLUR_SIGMA, background=1.0)),
        (f"floor, hue rotated {HUE_DEGREES:g} degrees", rotate_hue(floor, HUE_DEGREES)),
        (f"floor, one skin tone only ({toned:,} emoji set to medium)", floor[swap]),
        (f"one group only: the {int(group.sum())} {ONE_GROUP} emoji, repeated", repeat_to(floor[group], n)),
        ("floor, left and right halves swapped (layout, not a rung)", torch.roll(floor, 32, dims=3)),
    ]


def ladder(*, seed: int = 0, bootstraps: int = BOOTSTRAPS) -> list[tuple[str, dict[str, Any]]]:
    """(row name, evaluate result with `fid_bootstrap` (mean, std, share above the floor)) for every row."""
    from ganforge.data import load_dataset, to_float
    from ganforge.metrics import evaluate
    from ganforge.metrics.extractors import load_extractor
    from ganforge.metrics.features import extract
    from ganforge.metrics.fid import feature_stats, frechet_from_stats

    rows = rows_images()
    results = [(name, evaluate(images=x, data="emoji", n=len(x), seed=seed)) for name, x in rows]
    net = load_extractor("emoji")
    ref = extract(to_float(load_dataset("emoji", split="test").in_memory()).float(), net)[0]
    rng = np.random.default_rng(BOOTSTRAP_SEED)
    picks = [rng.integers(0, len(ref), len(ref)) for _ in range(bootstraps)]
    ref_stats = [feature_stats(ref[p]) for p in picks]
    fids = []
    for _, x in rows:
        mu, sigma = feature_stats(extract(x, net)[0])
        fids.append(np.array([frechet_from_stats(mu, sigma, *s) for s in ref_stats]))
    for (_, result), fid in zip(results, fids, strict=True):
        above = float((fid > fids[0]).mean())
        result["fid_bootstrap"] = {"mean": float(fid.mean()), "std": float(fid.std()), "above_floor": above}
    return results


GROUP_CONFIDENCES = (0.5, 0.6, 0.7, 0.8)


def group_coverage_table(confidences: Sequence[float] = GROUP_CONFIDENCES) -> str:
    """Groups covered by the held-out test emoji, the training emoji and every ladder row at each top probability.

    The held-out row is what sets the extractor's mode confidence: real emoji it never saw must cover all 9.
    """
    from ganforge.data import load_dataset, to_float
    from ganforge.metrics import modes
    from ganforge.metrics.extractors import load_extractor
    from ganforge.metrics.features import extract

    net = load_extractor("emoji")
    test = to_float(load_dataset("emoji", split="test").in_memory()).float()
    rows = [(f"held out: the {len(test)} test-split emoji", test), *rows_images()]
    lines = [
        "| images | " + " | ".join(f"p >= {c:g}" for c in confidences) + " |",
        "|" + " --- |" * (1 + len(confidences)),
    ]
    for name, x in rows:
        probs = extract(x, net)[1]
        cells = [modes.covered_at(probs, c) for c in confidences]
        lines.append(f"| {name} | " + " | ".join(f"{c}/{net.num_classes}" for c in cells) + " |")
    return "\n".join(lines)


def markdown(rows: list[tuple[str, dict[str, Any]]]) -> str:
    columns = ["images", "n", "FID", "FID, bootstrap mean ± std", "above floor", "KID (x1000)", "precision"]
    columns += ["recall", "density", "coverage", "groups", "group KL"]
    lines = ["| " + " | ".join(columns) + " |", "|" + " --- |" * len(columns)]
    for name, r in rows:
        b = r["fid_bootstrap"]
        lines.append(
            f"| {name} | {r['n_samples']:,} | {r['fid']:.2f} | {b['mean']:.2f} ± {b['std']:.2f} | "
            f"{100 * b['above_floor']:.0f}% | {1000 * r['kid']:.2f} | {r['precision']:.3f} | {r['recall']:.3f} | "
            f"{r['density']:.3f} | {r['coverage']:.3f} | {r['modes_covered']}/{r['num_modes']} | {r['mode_kl']:.4f} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganforge.metrics.colour_ladder", description=__doc__)
    parser.add_argument("--seed", type=int, default=0, help="evaluation seed (KID subsets)")
    parser.add_argument("--bootstraps", type=int, default=BOOTSTRAPS, help="reference resamples for the FID spread")
    parser.add_argument("--groups", action="store_true", help="only the groups covered at each confidence (1 min)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    if args.groups:
        print(group_coverage_table())
        return 0
    t0 = time.perf_counter()
    rows = ladder(seed=args.seed, bootstraps=args.bootstraps)
    logging.getLogger(__name__).info("emoji calibration: %d rows in %.0f s", len(rows), time.perf_counter() - t0)
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
