#!/usr/bin/env python3
"""Training speed of the seed preset against the plain PyTorch baseline, side by side.

Runs the baseline (../shared/bench/seed_mlp_torch.py) and ganforge's seed step alternately
(A B A B ...) on the same IDX data, each in its own process, and prints both steps/s, their
ratio (medians), the FLOPs of one step (counted by torch's FlopCounterMode) and the achieved
GFLOP/s against this machine's measured float32 matmul peak.

    python bench/train_speed.py --data-dir ../shared/data/mnist --steps 2000 --rounds 5
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO.parent / "shared" / "bench" / "seed_mlp_torch.py"


def ours(data_dir: str, steps: int, warmup: int) -> float:
    """Time the seed preset's train_step on the same data; returns steps/s."""
    import torch

    from ganforge.batches import Batches
    from ganforge.data import load_dataset
    from ganforge.presets import PRESETS
    from ganforge.train import build_state, train_step

    cfg = PRESETS["seed"]
    dataset = load_dataset(f"idx:{data_dir}")
    state = build_state(cfg, torch.device("cpu"))
    batches = Batches(dataset, cfg.batch_size, seed=0, device=torch.device("cpu"))
    for _ in range(warmup):
        train_step(state, batches.next, cfg)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(state, batches.next, cfg)
    return steps / (time.perf_counter() - t0)


def step_flops() -> int:
    """FLOPs of one seed step (forward and backward of both networks), counted by torch."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from ganforge.presets import PRESETS
    from ganforge.train import build_state, train_step

    cfg = PRESETS["seed"]
    state = build_state(cfg, torch.device("cpu"))
    real = torch.rand(cfg.batch_size, 1, 28, 28) * 2 - 1
    counter = FlopCounterMode(display=False)
    with counter:
        train_step(state, lambda: (real, None), cfg)
    return counter.get_total_flops()


def matmul_peak_gflops(size: int = 4096, repeats: int = 5) -> float:
    """Best-of float32 matmul GFLOP/s on this machine with torch's default threads."""
    import torch

    a, b = torch.randn(size, size), torch.randn(size, size)
    a @ b
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * size**3 / best / 1e9


def run_child(args: list[str]) -> float:
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1].split("=")[1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-dir", default=str(REPO.parent / "shared" / "data" / "mnist"))
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=50)
    p.add_argument("--rounds", type=int, default=5, help="A B pairs to run")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(f"steps_per_s={ours(args.data_dir, args.steps, args.warmup):.3f}")
        return

    common = ["--data-dir", args.data_dir, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    baseline_cmd = [sys.executable, str(BASELINE), *common]
    ours_cmd = [sys.executable, __file__, "--child", *common]
    base_runs, our_runs = [], []
    for i in range(args.rounds):
        base_runs.append(run_child(baseline_cmd))
        our_runs.append(run_child(ours_cmd))
        print(f"round {i + 1}: baseline {base_runs[-1]:.1f} steps/s, ganforge {our_runs[-1]:.1f} steps/s", flush=True)
    base, our = statistics.median(base_runs), statistics.median(our_runs)
    ratios = sorted(o / b for o, b in zip(our_runs, base_runs, strict=True))
    flops = step_flops()
    peak = matmul_peak_gflops()
    achieved = flops * our / 1e9
    print(f"baseline (plain PyTorch): {base:.1f} steps/s (median of {args.rounds})")
    print(f"ganforge seed preset:     {our:.1f} steps/s (median of {args.rounds})")
    print(
        f"ratio of medians: {our / base:.2f}x; paired ratios {', '.join(f'{r:.2f}' for r in ratios)} "
        f"(median {statistics.median(ratios):.2f}x)"
    )
    print(f"one step: {flops / 1e9:.3f} GFLOP; achieved {achieved:.1f} GFLOP/s; float32 matmul peak {peak:.1f} GFLOP/s")
    print(f"fraction of peak: {achieved / peak:.1%}; 10,000 steps take {10_000 / our:.0f} s")


if __name__ == "__main__":
    main()
