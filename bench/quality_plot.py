#!/usr/bin/env python3
"""FID against training minutes for presets, from `bench/quality.py --eval-every` runs: docs/img/quality-vs-time.png.

    python bench/quality_plot.py runs/quality/mnist-hq-s* runs/quality/dcgan-s* runs/quality/seed-stable-s* \\
        --rate mnist-hq=31.0 --rate dcgan=33.5 --rate seed-stable=120 --out docs/img/quality-vs-time.png

Each run's metrics.jsonl 'fid' lines give FID against its step. Minutes are steps / RATE, the preset's
steps per second measured alone on the machine at hand (`--rate PRESET=STEPS_PER_S`), so runs that shared
the cores still plot on an honest clock. Horizontal lines: the calibration ladder's floor and noise rungs
(docs/metrics.md, same protocol; `--ladder emoji`: docs/colour.md's, for emoji runs, whose training-time FID is
on 2,000 samples, so their curves sit a little above a 10,000-sample figure).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

# docs/metrics.md, MNIST ladder: FID of 10,000 images against the 10,000 test digits, extractor `mnist`
RUNGS = (
    (0.25, "floor: 5,000 real training digits"),
    (1.47, "test digits + N(0, 0.1) pixel noise"),
    (10.39, "test digits + N(0, 0.2) pixel noise"),
)
# docs/colour.md, emoji ladder: FID of the 3,288 training-split emoji (damaged) against the 367 test emoji, `emoji`
EMOJI_RUNGS = (
    (4.46, "floor: the 3,288 training-split emoji"),
    (14.87, "training emoji + N(0, 0.1) pixel noise"),
    (29.7, "issue 26 target: 2x the N(0, 0.1) rung"),
    (66.90, "training emoji + N(0, 0.2) pixel noise"),
)
LADDERS = {
    "mnist": (RUNGS, "FID (10,000 samples vs 10,000 test digits)"),
    "emoji": (EMOJI_RUNGS, "FID, emoji features (2,000 samples vs the 367 test emoji)"),
}


def read_curve(run_dir: Path) -> tuple[str, list[tuple[int, float]]]:
    """(label, [(step, fid), ...]) of one run; the label is its preset, plus "(unconditional)" or "(conditional)"
    when the run's conditioning is not its preset's today (mnist-hq was unconditional before it was conditional)."""
    from ganforge import PRESETS

    config = json.loads((run_dir / "config.json").read_text())
    points = []
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "fid" in row and "step" in row:
            points.append((int(row["step"]), float(row["fid"])))
    label = str(config.get("preset") or run_dir.name)
    classes = int((config.get("model") or {}).get("num_classes") or 0)
    if label in PRESETS and classes != PRESETS[label].model.num_classes:
        label += " (conditional)" if classes else " (unconditional)"
    return label, points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="run directories trained with --eval-every")
    parser.add_argument(
        "--rate",
        action="append",
        default=[],
        metavar="LABEL=STEPS_PER_S",
        required=True,
        help="a curve's steps/s alone; LABEL is the preset, with its suffix for a departing run",
    )
    parser.add_argument("--out", type=Path, default=Path("docs/img/quality-vs-time.png"))
    parser.add_argument("--title", default="MNIST (5,000 training digits), 2-core CPU")
    parser.add_argument("--ladder", choices=sorted(LADDERS), default="mnist", help="whose calibration rungs to draw")
    args = parser.parse_args()
    rates = {k: float(v) for k, v in (item.split("=", 1) for item in args.rate)}

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    curves: dict[str, list[list[tuple[int, float]]]] = defaultdict(list)
    for run in args.runs:
        preset, points = read_curve(run)
        if points:
            curves[preset].append(points)
    missing = sorted(set(curves) - set(rates))
    if missing:
        parser.error(f"no --rate for {', '.join(missing)}; measure its steps/s alone and pass PRESET=RATE")

    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    colors = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple")
    for (preset, runs), color in zip(sorted(curves.items()), colors, strict=False):
        for i, points in enumerate(runs):
            minutes = [step / rates[preset] / 60 for step, _ in points]
            ax.plot(minutes, [fid for _, fid in points], "o-", color=color, alpha=0.8, markersize=3,
                    label=f"{preset} ({len(runs)} seed{'s' if len(runs) > 1 else ''})" if i == 0 else None)  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlim(left=0)
    rungs, ylabel = LADDERS[args.ladder]
    for fid, label in rungs:
        ax.axhline(fid, color="grey", linestyle="--", linewidth=0.8)
        ax.text(0.01, fid * 1.04, label, transform=ax.get_yaxis_transform(), va="bottom", ha="left", fontsize=7,
                color="dimgrey")  # fmt: skip
    ax.set_yscale("log")
    ax.set_xlabel("training minutes (steps / steps per second measured alone)")
    ax.set_ylabel(ylabel)
    ax.set_title(args.title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    tmp = args.out.with_suffix(".tmp.png")
    fig.savefig(tmp)
    tmp.replace(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
