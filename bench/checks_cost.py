#!/usr/bin/env python3
"""What the quick quality checks, the summary and the report cost, against a plain PyTorch loop (issue 29).

Runs, alternately in one process tree (A B C A B C ...), each as a whole process timed from start to exit:
  default  `ganforge train --preset P --steps N` as a user runs it (checks, summary, report, grids, checkpoints)
  nocheck  the same with --check-every 0
  plain    ../shared/bench/seed_mlp_torch.py --steps N --warmup 0 on the same IDX digits (seed preset only)
and prints each round's seconds, the medians, the checks' share of the default run and the default run against the
plain loop, each paired within a round. Run it alone (two torch jobs on 2 cores slow each other several-fold), or
pinned to one core: `taskset -c 0 env OMP_NUM_THREADS=1 python bench/checks_cost.py`.

    python bench/checks_cost.py --preset seed --steps 3000 --rounds 3 --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))
from ganforge.precision import cpu_model  # noqa: E402

BASELINE = REPO.parent / "shared" / "bench" / "seed_mlp_torch.py"


SUMMARY = re.compile(r"trained \d+ steps in ([\d.]+) s: ([\d.]+) s of steps")


def timed(argv: list[str]) -> tuple[float, float | None]:
    """(whole-process seconds, seconds the run spent outside its steps by its own summary line, or None)."""
    start = time.perf_counter()
    done = subprocess.run(argv, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)} failed:\n{done.stderr[-2000:]}")
    found = SUMMARY.search(done.stdout + done.stderr)
    return seconds, None if found is None else float(found[1]) - float(found[2])


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
    outside: dict[str, list[float]] = {k: [] for k in kinds}  # in-process: not steps (checks, grids, report, ...)
    try:
        for r in range(args.rounds):
            for kind, argv in kinds.items():
                whole, rest = timed(argv(r))
                times[kind].append(whole)
                if rest is not None:
                    outside[kind].append(rest)
            print(f"round {r}: " + "  ".join(f"{k} {v[-1]:.1f} s" for k, v in times.items()), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    threads = os.environ.get("OMP_NUM_THREADS", "default")
    print(f"cpu: {cpu_model()}; OMP_NUM_THREADS {threads}; preset {args.preset}, {args.steps} steps, "
          f"{args.rounds} rounds, whole processes")  # fmt: skip
    print("medians: " + "  ".join(f"{k} {v:.1f} s" for k, v in med.items()))
    # Paired within each round (the machine's load drifts between rounds), then the median over rounds.
    added = [d / n - 1 for d, n in zip(times["default"], times["nocheck"], strict=True)]
    print(f"checks and summary: +{statistics.median(added) * 100:.1f}% of the run (median of the rounds' pairs: "
          + ", ".join(f"{a * 100:+.1f}%" for a in added) + ")")  # fmt: skip
    if outside["default"] and outside["nocheck"]:  # robust to the steps' noise: the checks' own seconds
        extra = [d - n for d, n in zip(outside["default"], outside["nocheck"], strict=True)]
        share = statistics.median(extra) / statistics.median(times["nocheck"]) * 100
        print(f"in-process: the checks and the end-of-run FID took {statistics.median(extra):.2f} s (rounds: "
              + ", ".join(f"{e:.2f}" for e in extra) + f"), {share:.1f}% of the --check-every 0 run")  # fmt: skip
    if "plain" in med:
        ratios = [p / d for p, d in zip(times["plain"], times["default"], strict=True)]
        print(f"default run vs the plain loop: {statistics.median(ratios):.2f}x as fast (whole processes; rounds: "
              + ", ".join(f"{r:.2f}" for r in ratios) + ")")  # fmt: skip
        ratios = [p / n for p, n in zip(times["plain"], times["nocheck"], strict=True)]
        print(f"--check-every 0 vs the plain loop: {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()
