#!/usr/bin/env python3
"""The 2-D benchmark: modes covered and high-quality share of the toy presets over many seeds.

    python bench/toy_modes.py [--seeds 10] [--first-seed 0] [--presets toy-ring toy-grid] [--jobs 1]
                              [--out docs/img/toy_modes.png] [--json FILE]

Trains each preset (toy-ring on toy:ring8, toy-grid on toy:grid25) once per seed through
ganforge.train, draws 2,500 samples from the exported generator (EMA when the preset uses it) and
scores them with ganforge's toy metrics, the ones `ganforge eval` reports: a sample is of high
quality within 3 std of its nearest mode, and a mode is covered when it holds at least a tenth of a
uniform share of high-quality samples. Prints one line per seed (with the process's CPU seconds,
which stay meaningful on a shared machine, and the wall seconds), a summary line per preset, and
saves one scatter panel per preset (seed 0's samples over the modes and their 3-std circles).

Published (PacGAN, Lin et al. 2018, Table 1; 2,500 samples): a plain GAN covers 6.3/8 and
17.3/25 modes; PacGAN 7.9/8 at 95.6% high quality and 24.8/25 at 93.6%. The target here: every
mode with at least 95% high-quality samples on at least 9 of 10 seeds, each seed under a CPU minute.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
N_SAMPLES = 2_500
HQ_TARGET = 0.95


def run_seed(preset: str, seed: int, runs_dir: str, steps: int | None) -> dict:
    """Train one preset at one seed (one thread) and score 2,500 samples of its generator."""
    import torch

    torch.set_num_threads(1)  # the timing means one core, and parallel jobs do not fight over threads
    from ganforge import PRESETS, load_generator, sample, train
    from ganforge.data import toy_modes
    from ganforge.metrics.toy import toy_metrics

    cfg = dataclasses.replace(PRESETS[preset], seed=seed, device="cpu", out_dir=f"{runs_dir}/{preset}-{seed}")
    if steps is not None:
        cfg = dataclasses.replace(cfg, steps=steps)
    wall, cpu = time.perf_counter(), time.process_time()
    train(cfg)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    centers, std = toy_modes(cfg.data)
    points = sample(load_generator(cfg.out_dir), N_SAMPLES, seed=0).reshape(N_SAMPLES, 2)
    scores = toy_metrics(points, centers, std)
    return {"preset": preset, "data": cfg.data, "seed": seed, "steps": cfg.steps, "wall_s": wall, "cpu_s": cpu,
            "points": points.tolist(), **scores}  # fmt: skip


def passes(row: dict) -> bool:
    return row["modes_covered"] == row["num_modes"] and row["high_quality"] >= HQ_TARGET


def summary(preset: str, rows: list[dict]) -> str:
    """One line: mean modes, mean high-quality share, seeds on target, worst and mean CPU seconds."""
    n = len(rows)
    modes = sum(r["modes_covered"] for r in rows) / n
    hq = sum(r["high_quality"] for r in rows) / n
    on_target = sum(passes(r) for r in rows)
    cpu = [r["cpu_s"] for r in rows]
    return (
        f"{preset:9s} {rows[0]['data']:11s} modes {modes:5.2f}/{rows[0]['num_modes']}  high quality {hq:6.1%}  "
        f"on target {on_target}/{n} seeds  cpu_s mean {sum(cpu) / n:5.1f} max {max(cpu):5.1f}"
    )


def plot(results: dict[str, list[dict]], path: Path) -> None:
    """One panel per preset: seed 0's (or the first seed's) samples over the modes, 3-std circles in red."""
    import matplotlib

    matplotlib.use("Agg")
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Circle

    from ganforge.data import toy_modes

    fig = Figure(figsize=(4.4 * len(results), 4.6), dpi=110)
    for i, (preset, rows) in enumerate(results.items(), start=1):
        row = rows[0]
        ax = fig.add_subplot(1, len(results), i)
        xy = np.asarray(row["points"])
        centers, std = toy_modes(row["data"])
        ax.scatter(xy[:, 0], xy[:, 1], s=3, c="#1f5fa8", alpha=0.4, linewidths=0)
        for cx, cy in centers.tolist():
            ax.add_patch(Circle((cx, cy), 3 * std, fill=False, edgecolor="#d62728", linewidth=0.7))
        half = float(centers.abs().max()) + 1.0
        ax.set_xlim(-half, half)
        ax.set_ylim(-half, half)
        ax.set_aspect("equal", adjustable="box")
        ax.set_title(
            f"{preset} on {row['data']}, seed {row['seed']}: {row['modes_covered']}/{row['num_modes']} modes, "
            f"{row['high_quality']:.1%} within 3 std",
            fontsize=8,
        )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--presets", nargs="+", default=["toy-ring", "toy-grid"])
    parser.add_argument("--seeds", type=int, default=10, help="how many seeds per preset")
    parser.add_argument("--first-seed", type=int, default=0, help="seeds first..first+N-1")
    parser.add_argument("--steps", type=int, default=None, help="override the presets' steps (for quick looks)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel training processes (each one thread)")
    parser.add_argument("--out", default=str(REPO / "docs" / "img" / "toy_modes.png"), help="scatter plot PNG")
    parser.add_argument("--json", default=None, help="also write the per-seed scores here")
    args = parser.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")

    results: dict[str, list[dict]] = {p: [] for p in args.presets}
    print(f"{'preset':9s} {'data':11s} {'seed':>4s} {'modes':>6s} {'high_q':>7s} {'cpu_s':>6s} {'wall_s':>6s}")
    with tempfile.TemporaryDirectory(prefix="toy_modes_") as runs_dir:
        tasks = [
            (p, s, runs_dir, args.steps)
            for p in args.presets
            for s in range(args.first_seed, args.first_seed + args.seeds)
        ]
        with ProcessPoolExecutor(max_workers=args.jobs) as pool:
            futures = [pool.submit(run_seed, *task) for task in tasks]
            for future in futures:
                row = future.result()
                results[row["preset"]].append(row)
                print(
                    f"{row['preset']:9s} {row['data']:11s} {row['seed']:4d} "
                    f"{row['modes_covered']:>3d}/{row['num_modes']:<2d} {row['high_quality']:7.1%} "
                    f"{row['cpu_s']:6.1f} {row['wall_s']:6.1f}{'' if passes(row) else '  (below target)'}",
                    flush=True,
                )
    for preset, rows in results.items():
        print(summary(preset, rows))
    plot(results, Path(args.out))
    print(f"scatter plot: {args.out}")
    if args.json:
        scores = [{k: v for k, v in r.items() if k != "points"} for rows in results.values() for r in rows]
        Path(args.json).write_text(json.dumps(scores, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
