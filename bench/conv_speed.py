#!/usr/bin/env python3
"""Training speed of the convolutional presets against a textbook PyTorch DCGAN, side by side.

Runs the baseline (../shared/bench/dcgan_torch.py: DataLoader, BCELoss, two D forwards, default
Adam) and ganforge's training step of each preset alternately (A B C A B C ...) on the same IDX
data, each in its own process, and prints img/s per round, the medians and each preset's ratio to
the baseline (ratio of medians, and the median of the per-round ratios, which cancels most of
the drift of a shared machine). The baseline's network is the `dcgan` preset's, so the `dcgan`
ratio is the cost of the loop; other presets' ratios also include their recipe's extra compute.

    python bench/conv_speed.py --steps 1000 --rounds 5         # each preset at fp32 and at its default (auto)
    python bench/conv_speed.py --presets dcgan mnist-hq --threads 2 --steps 2000
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE = REPO.parent / "shared" / "bench" / "dcgan_torch.py"
DEFAULT_DATA = REPO.parent / "shared" / "data" / "mnist"


def ours(preset: str, data_dir: str, steps: int, warmup: int, threads: int, precision: str) -> float:
    """Time the preset's train_step on the IDX images in data_dir; returns img/s."""
    import dataclasses

    import torch

    from ganforge import speed
    from ganforge.batches import Batches
    from ganforge.data import load_dataset
    from ganforge.presets import get_preset
    from ganforge.train import build_state, train_step

    if threads:
        torch.set_num_threads(threads)
    cfg = speed.resolve_auto(dataclasses.replace(get_preset(preset), precision=precision), torch.device("cpu"))
    dataset = load_dataset(f"idx:{data_dir}", image_size=cfg.model.image_size, channels=cfg.model.channels)
    state = build_state(cfg, torch.device("cpu"))
    batches = Batches(dataset, cfg.batch_size, seed=0, device=torch.device("cpu"))

    def next_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        real, labels = batches.next()
        return speed.batch_format(real, cfg), labels  # as the training loop hands it over

    for _ in range(warmup):
        train_step(state, next_batch, cfg)
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step(state, next_batch, cfg)
    return steps * cfg.batch_size / (time.perf_counter() - t0)


def run_child(args: list[str]) -> float:
    """Run one timing process; its last line is `img_per_s=<float>`."""
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1].split("=")[1])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--presets", nargs="+", default=["dcgan", "mnist-hq"], help="presets to time (default dcgan mnist-hq)"
    )
    p.add_argument("--data-dir", default=str(DEFAULT_DATA), help="a folder of MNIST-format IDX files")
    p.add_argument("--steps", type=int, default=1000, help="timed steps a process (default 1000)")
    p.add_argument("--warmup", type=int, default=50, help="untimed steps first (default 50)")
    p.add_argument("--rounds", type=int, default=5, help="rounds of (baseline, each preset) (default 5)")
    p.add_argument("--threads", type=int, default=0, help="torch threads in every process (0: the default)")
    p.add_argument(
        "--precisions",
        nargs="+",
        default=["fp32", "auto"],
        choices=("fp32", "bf16", "auto"),
        help="each preset runs at each of these (default fp32 auto: auto is the preset's default on this machine, "
        "bf16 + channels_last where the CPU has native bf16)",
    )
    p.add_argument("--child", metavar="PRESET", help=argparse.SUPPRESS)
    p.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        print(f"img_per_s={ours(args.child, args.data_dir, args.steps, args.warmup, args.threads, args.precision):.1f}")
        return 0

    from ganforge.presets import PRESETS

    missing = [name for name in args.presets if name not in PRESETS]
    if missing:
        print(f"conv_speed: error: unknown preset {missing[0]!r}; use some of {', '.join(PRESETS)}", file=sys.stderr)
        return 2
    common = ["--data-dir", args.data_dir, "--steps", str(args.steps), "--warmup", str(args.warmup)]
    common += ["--threads", str(args.threads)]
    commands = {"baseline": [sys.executable, str(BASELINE), *common]}
    for name in args.presets:
        for precision in args.precisions:
            commands[f"{name}@{precision}"] = [
                *[sys.executable, __file__, "--child", name, "--precision", precision],
                *common,
            ]
    runs: dict[str, list[float]] = {name: [] for name in commands}
    for i in range(args.rounds):
        for name, command in commands.items():
            runs[name].append(run_child(command))
        cells = ", ".join(f"{name} {values[-1]:,.0f}" for name, values in runs.items())
        print(f"round {i + 1}: img/s {cells}", flush=True)

    base = statistics.median(runs["baseline"])
    threads = args.threads or "default"
    print(f"baseline (textbook PyTorch DCGAN): {base:,.0f} img/s (median of {args.rounds}, threads {threads})")
    for name in list(commands)[1:]:
        med = statistics.median(runs[name])
        paired = [o / b for o, b in zip(runs[name], runs["baseline"], strict=True)]
        print(
            f"ganforge {name}: {med:,.0f} img/s; ratio of medians {med / base:.2f}x; "
            f"paired ratios {', '.join(f'{r:.2f}' for r in sorted(paired))} (median {statistics.median(paired):.2f}x)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
