"""Rebuild the shipped MNIST detector, src/ganforge/weights/detector-mnist.safetensors, and its SHA256SUMS line.

Real: mnist-sample's 5,000 training digits. Fake: samples of the generator runs that
bench/detector_generators.py trains (mlp `seed` and `seed-stable`, `dcgan`, `cgan`, each at every checkpoint it
keeps) and of a full `mnist-hq` run. The resnet kind (sngan) is held out for the unseen-kind target.

    OMP_NUM_THREADS=1 nice -n 10 python bench/detector_generators.py --out /tmp/det
    OMP_NUM_THREADS=1 nice -n 10 python bench/detector.py --runs /tmp/det --mnist-hq /work/runs/mnist-hq
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ganforge.cli import main
from ganforge.detector import SHA256SUMS, SHIPPED_FILE, WEIGHTS_DIR
from ganforge.io import file_digest, write_text_atomic

TRAINED_ON = ("seed", "seed-stable", "dcgan", "cgan")  # presets in --runs; sngan (resnet) is held out


def main_() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", default="/tmp/det", help="folder of bench/detector_generators.py's runs")
    parser.add_argument("--mnist-hq", default="/work/runs/mnist-hq", help="a full mnist-hq run ('' to leave out)")
    parser.add_argument("--steps", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=str(WEIGHTS_DIR / SHIPPED_FILE))
    args = parser.parse_args()
    fakes = [str(Path(args.runs) / preset) for preset in TRAINED_ON]
    if args.mnist_hq:
        fakes.append(args.mnist_hq)
    code = main(["detector", "train", "--real", "mnist-sample", "--fake", *fakes, "--out", args.out,
                 "--steps", str(args.steps), "--seed", str(args.seed)])  # fmt: skip
    if code == 0 and Path(args.out).parent == WEIGHTS_DIR:
        write_text_atomic(WEIGHTS_DIR / SHA256SUMS, f"{file_digest(args.out)}  {SHIPPED_FILE}\n")
        print(f"wrote {WEIGHTS_DIR / SHA256SUMS}")
    return code


if __name__ == "__main__":
    raise SystemExit(main_())
