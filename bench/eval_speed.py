"""Time the full metric suite: 10,000 generated vs 10,000 reference images, reference statistics cached.

    python bench/eval_speed.py [--data-dir ../shared/data/mnist] [--repeats 3]

The "generated" images are test digits with N(0, 0.1) pixel noise, so the time covers feature
extraction of all 10,000 and every metric; `--generator RUN` times sampling from a generator too.
The first call computes and caches the reference statistics (reported, not counted). The last line
is `eval_s=<median seconds>`.
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--generator", default=None, help="a run dir or generator file to sample from instead")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if args.threads:
        torch.set_num_threads(args.threads)
    os.environ["GANFORGE_HOME"] = tempfile.mkdtemp(prefix="ganforge-bench-")  # a cold cache, not the user's

    from ganforge.data import load_dataset, to_float
    from ganforge.metrics import evaluate, format_table
    from ganforge.metrics.calibrate import add_noise

    if args.generator:
        source: dict = {"generator": args.generator}
    else:
        test = load_dataset("mnist", split="test", data_dir=args.data_dir)
        source = {"images": add_noise(to_float(test.images)[: args.n], 0.1)}

    t = time.perf_counter()
    result = evaluate(**source, data="mnist", data_dir=args.data_dir, n=args.n)
    print(f"first call (computes and caches the reference statistics): {time.perf_counter() - t:.2f} s")
    times = []
    for _ in range(args.repeats):
        t = time.perf_counter()
        result = evaluate(**source, data="mnist", data_dir=args.data_dir, n=args.n)
        times.append(time.perf_counter() - t)
    print(format_table(result))
    print("per metric (s):", result["metric_time_s"])
    print(f"threads={torch.get_num_threads()} runs: " + ", ".join(f"{x:.2f}" for x in times))
    print(f"eval_s={statistics.median(times):.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
