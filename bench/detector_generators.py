"""Train the short generator runs whose samples the shipped detector learns from (and is tested on).

Each run keeps every checkpoint, so the detector sees one generator at several qualities. The resnet run (sngan) is
the held-out kind: the detector never trains on it.

    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_generators.py --out /tmp/det
    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_generators.py --out /tmp/det-eval --seed 1 --only dcgan seed

The second line trains the same kinds with another seed: generators the detector never saw, of kinds it did.
"""

from __future__ import annotations

import argparse
import logging
import time
from dataclasses import replace

from ganforge.presets import get_preset
from ganforge.train import train

# (preset, steps, checkpoint_every, seed): short runs of several kinds; the resnet one is never trained on.
RUNS = [
    ("seed", 3_000, 500, 0),
    ("dcgan", 2_000, 400, 0),
    ("cgan", 2_000, 400, 0),
    ("seed-stable", 2_000, 500, 0),
    ("sngan", 600, 300, 0),  # the held-out kind (resnet arch); the measured run was stopped at step 638
]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="/tmp/det")
    parser.add_argument("--data", default="mnist-sample")
    parser.add_argument("--only", nargs="*", help="preset names to train (default: all)")
    parser.add_argument("--seed", type=int, help="training seed for every run (default: the table's)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for preset, steps, every, seed in RUNS:
        if args.only and preset not in args.only:
            continue
        cfg = replace(
            get_preset(preset), data=args.data, steps=steps, seed=seed if args.seed is None else args.seed,
            out_dir=f"{args.out}/{preset}",
            checkpoint_every=every, keep_checkpoints=20, sample_every=steps, check_every=0, device="cpu",
        )  # fmt: skip
        start = time.perf_counter()
        train(cfg)
        print(f"{preset}: {steps} steps in {time.perf_counter() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
