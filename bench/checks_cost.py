#!/usr/bin/env python3
"""What the quick quality checks, the summary and the report cost, against a plain PyTorch loop (issue 29).

Runs, alternately in one process tree (A B C A B C ...), each as a whole process timed from start to exit:
  default  `ganforge train --preset P --steps N` as a user runs it (checks, summary, report, grids, checkpoints)
  nocheck  the same with --check-every 0
  plain    ../shared/bench/seed_mlp_torch.py --steps N --warmup 0 on the same IDX digits (seed preset only)
and prints each round's seconds, the medians, checks' share of the default run and the default run against the
plain loop. Run it alone: two torch jobs on 2 cores slow each other several-fold.

    python bench/checks_cost.py --preset seed --steps 3000 --rounds 3 --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO.parent / "shared" / "bench" / "seed_mlp_torch.py"


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--preset", default="seed")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="checks_cost_"))
    train = [sys.executable, "-m", "ganforge", "train", "--preset", args.preset, "--steps", str(args.steps),
             "--data", f"idx:{args.data_dir}"]  # fmt: skip
    kinds = {
        "default": lambda r: train + ["--out", str(work / f"default{r}")],
        "nocheck": lambda r: train + ["--out", str(work / f"nocheck{r}"), "--check-every", "0"],
    }
    if args.preset == "seed" and BASELINE.is_file():
        kinds["plain"] = lambda r: [sys.executable, str(BASELINE), "--data-dir", args.data_dir,
                                    "--steps", str(args.steps), "--warmup", "0"]  # fmt: skip
    times: dict[str, list[float]] = {k: [] for k in kinds}
    try:
        for r in range(args.rounds):
            for kind, argv in kinds.items():
                times[kind].append(timed(argv(r)))
            print(f"round {r}: " + "  ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(f"cpu: {platform.processor() or platform.machine()}; preset {args.preset}, {args.steps} steps, "
          f"{args.rounds} rounds, whole processes")  # fmt: skip
    print("medians: " + "  ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    print(f"checks, summary and report: +{(med['default'] / med['nocheck'] - 1) * 100:.1f}% of the run")
    if "plain" in med:
        print(f"default run vs the plain loop: {med['plain'] / med['default']:.2f}x as fast (whole processes)")


if __name__ == "__main__":
    main()
