"""Evaluate a detector against the 10,000 MNIST test digits: ROC-AUC and verdicts per generator set and re-save.

Fake sets: the generator kinds the shipped detector was trained on, sampled with latent seeds it never saw; the
same kinds trained again with another training seed (generators it never saw); and the held-out kind (the resnet
arch: sngan). Each is scored as written (PNG pixels) and after a transform applied to real and fake alike.

    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_generators.py --out /tmp/det
    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_generators.py --out /tmp/det-eval --seed 1 --only dcgan seed
    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_eval.py --runs /tmp/det --eval-runs /tmp/det-eval \\
        --mnist-hq /work/runs/mnist-hq --data idx:/work/shared/data/mnist
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from ganforge.data import load_dataset
from ganforge.detector import load_detector, score
from ganforge.detector_train import draw_fakes, fake_sources, jpeg, roc_auc, shift

EVAL_SEED = 7_000_000  # latent seeds far from training's (0 .. number of sources)


def crop_resize(pixels: np.ndarray, margin: int = 2) -> np.ndarray:
    """Cut `margin` pixels off every side and scale back up to 28x28, as a tight crop of a grid tile would."""
    from PIL import Image

    inner = Image.fromarray(pixels[margin:-margin, margin:-margin])
    return np.asarray(inner.resize(pixels.shape[::-1], Image.Resampling.BILINEAR), dtype=np.uint8)


def noise(pixels: np.ndarray, rng: np.random.Generator, std: float = 2.0) -> np.ndarray:
    return np.clip(pixels + rng.normal(0, std, pixels.shape), 0, 255).round().astype(np.uint8)


TRANSFORMS: dict[str, Callable[[np.ndarray, np.random.Generator], np.ndarray]] = {
    "as written (PNG)": lambda p, rng: p,
    "JPEG q90": lambda p, rng: jpeg(p, 90),
    "JPEG q75": lambda p, rng: jpeg(p, 75),
    "JPEG q50": lambda p, rng: jpeg(p, 50),
    "1-px shift": lambda p, rng: shift(p, 1, 1),
    "crop 2 px a side, resized": lambda p, rng: crop_resize(p),
    "noise std 2/255": noise,
}


def apply(transform: Callable[[np.ndarray, np.random.Generator], np.ndarray], images: np.ndarray) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.stack([transform(p, rng) for p in images])


def scores_of(images: np.ndarray, detector: object) -> np.ndarray:
    return score(torch.from_numpy(images).unsqueeze(1), detector)  # type: ignore[arg-type]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--detector", help="detector file (default: the shipped one)")
    parser.add_argument("--runs", default="/tmp/det")
    parser.add_argument("--eval-runs", default="/tmp/det-eval", help="runs of seen kinds with another training seed")
    parser.add_argument("--mnist-hq", default="/work/runs/mnist-hq")
    parser.add_argument("--data", default="idx:/work/shared/data/mnist", help="the real test digits")
    parser.add_argument("--n", type=int, default=2_000, help="samples of each generator")
    parser.add_argument("--transforms", nargs="*", default=list(TRANSFORMS))
    args = parser.parse_args()
    start = time.perf_counter()
    detector = load_detector(args.detector)
    real = load_dataset(args.data, split="test").images[:, 0].numpy()
    runs = Path(args.runs)
    sets = {
        "seen kinds, new latent seeds": [runs / p for p in ("seed", "seed-stable", "dcgan", "cgan")]
        + ([Path(args.mnist_hq)] if args.mnist_hq else []),
        "seen kinds, new training seed": [Path(args.eval_runs) / p for p in ("seed", "dcgan")],
        "held-out kind (resnet arch: sngan)": [runs / "sngan"],
    }
    fakes = {}
    for name, paths in sets.items():
        present = [p for p in paths if (p / "generator.safetensors").is_file()]
        if present:
            sources = fake_sources(present, checkpoints=False)
            fakes[name] = draw_fakes(sources, args.n, seed=EVAL_SEED)
            print(f"{name}: {', '.join(str(p) for p in present)}; {len(fakes[name]):,} samples")
    print(f"detector {detector.path} (sha256 {detector.sha256[:12]}...), threshold {detector.threshold:.4f}; "
          f"real: {len(real):,} digits of {args.data}")  # fmt: skip
    print()
    print("| transform (real and fake alike) | fake set | ROC-AUC | fakes flagged | real flagged |")
    print("| --- | --- | ---: | ---: | ---: |")
    for t_name in args.transforms:
        transform = TRANSFORMS[t_name]
        real_scores = scores_of(apply(transform, real), detector)
        real_flagged = float((real_scores > detector.threshold).mean())
        for name, images in fakes.items():
            fake_scores = scores_of(apply(transform, images), detector)
            print(f"| {t_name} | {name} | {roc_auc(real_scores, fake_scores):.4f} | "
                  f"{(fake_scores > detector.threshold).mean():.2%} | {real_flagged:.2%} |", flush=True)  # fmt: skip
    print(f"\n{time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
