#!/usr/bin/env python3
"""Data parallel on one machine: 2 processes x 1 thread (torchrun, gloo) against 1 process x 2 threads.

For each preset, runs `ganforge train` both ways alternately (A B A B ...) at the same global batch and
prints each run's img/s (from the run's own summary line, which counts training time alone), the medians
and the paired ratio. On small models gloo's all-reduce of every gradient is pure overhead; the ratio
says where data parallel starts to pay.

    python bench/ddp_speed.py --data idx:../shared/data/mnist --rounds 3
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STEPS = {"seed": 1_000, "dcgan": 150}
_SUMMARY = re.compile(r"trained \d+ steps in [\d.]+ s \(([\d.]+) img/s\)")


def run(preset: str, data: str, steps: int, processes: int, out: Path) -> float:
    """One training run; returns its img/s."""
    threads = 2 // processes
    train = ["train", "--preset", preset, "--data", data, "--steps", str(steps), "--device", "cpu",
             "--out", str(out), "--log-every", "0", "--checkpoint-every", "0", "--sample-every", "0"]  # fmt: skip
    if processes == 1:
        cmd = [sys.executable, "-m", "ganforge", *train]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
               "-m", "ganforge", *train]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    found = _SUMMARY.search(result.stdout)
    if result.returncode != 0 or found is None:
        sys.exit(f"run failed ({' '.join(cmd)}):\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return float(found.group(1))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default=f"idx:{REPO.parent / 'shared' / 'data' / 'mnist'}")
    p.add_argument("--presets", nargs="+", default=["seed", "dcgan"])
    p.add_argument("--rounds", type=int, default=3, help="A B pairs a preset")
    p.add_argument("--steps-scale", type=float, default=1.0, help="multiply each preset's steps (0.1 for a check)")
    args = p.parse_args()
    print(f"cpu cores: {os.cpu_count()}; A = torchrun 2 processes x 1 thread (gloo), B = 1 process x 2 threads")
    with tempfile.TemporaryDirectory() as tmp:
        for preset in args.presets:
            steps = max(10, int(STEPS.get(preset, 200) * args.steps_scale))
            two, one = [], []
            for i in range(args.rounds):
                two.append(run(preset, args.data, steps, 2, Path(tmp) / f"{preset}-a{i}"))
                one.append(run(preset, args.data, steps, 1, Path(tmp) / f"{preset}-b{i}"))
                print(f"{preset} round {i + 1}: 2x1 {two[-1]:.0f} img/s, 1x2 {one[-1]:.0f} img/s", flush=True)
            ratios = sorted(a / b for a, b in zip(two, one, strict=True))
            print(
                f"{preset} ({steps} steps): 2 processes {statistics.median(two):.0f} img/s, "
                f"1 process {statistics.median(one):.0f} img/s; paired ratios {', '.join(f'{r:.2f}' for r in ratios)} "
                f"(median {statistics.median(ratios):.2f}x)"
            )


if __name__ == "__main__":
    main()
