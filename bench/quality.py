#!/usr/bin/env python3
"""Quality of a preset: train it on several seeds, score each run with `ganforge eval`'s protocol, summarize.

For each seed this trains the preset with `ganforge.train` (its own data, as `ganforge train --preset P`
would: `mnist` falls back to the 5,000 mnist-sample digits offline), then scores the run's generator
exactly as `ganforge eval RUN --data-dir DIR` does (10,000 samples against the reference split, the
extractor named by the data) and writes RUN/eval.json. It prints one line per seed and a last line with
the median and the worst of each column (worst: highest time, FID and mode KL; lowest precision,
recall and classes).

    OMP_NUM_THREADS=1 python bench/quality.py seed-stable --seeds 0 1 2
    python bench/quality.py dcgan --seeds 0 --steps 2000 --out /tmp/quality
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = REPO.parent / "shared" / "data" / "mnist"

# (key, header, format, worst): the columns of a line and how the summary picks the worst seed.
COLUMNS = (
    ("train_s", "time", "{:7.1f}s", max),
    ("fid", "FID", "{:8.2f}", max),
    ("precision", "prec", "{:5.2f}", min),
    ("recall", "recall", "{:6.2f}", min),
    ("modes_covered", "classes", "{:>7}", min),
    ("mode_kl", "mode KL", "{:7.3f}", max),
    # stacked-mnist only (1,000 R-G-B digit triples): shown where the scores have them
    ("stacked_modes", "modes", "{:>5}", min),
    ("stacked_kl", "KL", "{:6.3f}", max),
    ("stacked_confident", "confident", "{:5.3f}", min),
)
OPTIONAL = ("stacked_modes", "stacked_kl", "stacked_confident")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("preset", help="a preset name (ganforge.presets.PRESETS)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (default 0 1 2)")
    parser.add_argument("--steps", type=int, help="training steps (default: the preset's)")
    default_dir = str(SHARED_MNIST) if SHARED_MNIST.is_dir() else None
    parser.add_argument(
        "--data-dir", default=default_dir, help=f"where the reference split's files are (default {default_dir})"
    )
    parser.add_argument(
        "--n", type=int, default=None, help="samples to score (default: eval's, 10000; 26000 for stacked-mnist)"
    )
    parser.add_argument(
        "--out", default="runs/quality", help="folder for the runs: OUT/PRESET-sSEED (default %(default)s)"
    )
    parser.add_argument("--device", default="cpu", help="training and scoring device (default cpu)")
    parser.add_argument("--json", metavar="FILE", help="also write every seed's result and the summary here")
    parser.add_argument(
        "--eval-every",
        type=int,
        default=0,
        metavar="K",
        help="also score the run every K steps with the same protocol (metrics.jsonl 'eval' lines; "
        "bench/quality_plot.py draws them); the final line's time excludes these evaluations",
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a config field (model fields as model.FIELD), e.g. --set precision=bf16 "
        "--set channels_last=true; repeatable",
    )
    return parser.parse_args(argv)


def with_overrides(cfg: Any, pairs: list[str]) -> Any:
    """cfg with each FIELD=VALUE applied, the value read as the field's current type (ConfigError if unknown)."""
    from ganforge.errors import ConfigError

    for pair in pairs:
        key, sep, text = pair.partition("=")
        if not sep:
            raise ConfigError(f"--set {pair!r}: write FIELD=VALUE, e.g. precision=bf16")
        owner, name = (cfg.model, key[6:]) if key.startswith("model.") else (cfg, key)
        if not hasattr(owner, name) or name.startswith("_"):
            raise ConfigError(f"--set {pair!r}: {key} is not a config field")
        old = getattr(owner, name)
        if isinstance(old, bool):
            value: Any = text.lower() in ("1", "true", "yes", "on")
        elif isinstance(old, int):
            value = int(float(text))
        elif isinstance(old, float):
            value = float(text)
        else:
            value = None if text.lower() == "none" else text
        if owner is cfg:
            cfg = dataclasses.replace(cfg, **{name: value})
        else:
            cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, **{name: value}))
    return cfg


def run_one(preset: str, seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Train one seed and score it; returns the line's numbers and where the run is."""
    from ganforge.io import write_text_atomic
    from ganforge.metrics import evaluate
    from ganforge.presets import get_preset
    from ganforge.train import train

    base = with_overrides(get_preset(preset), args.set)
    run_dir = Path(args.out) / f"{preset}-s{seed}"
    cfg = dataclasses.replace(
        base,
        seed=seed,
        steps=args.steps or base.steps,
        out_dir=str(run_dir),
        device=args.device,
        eval_every=args.eval_every,
    )
    eval_s = 0.0

    def evaluator(G: Any) -> dict[str, Any]:  # the final protocol, mid-run; its time is not training time
        nonlocal eval_s
        start = time.perf_counter()
        scores = evaluate(G, data=cfg.data, data_dir=args.data_dir, n=args.n, device=args.device)
        eval_s += time.perf_counter() - start
        return scores

    t0 = time.perf_counter()  # wall clock of the whole train() call, data loading included, like `ganforge train`
    result = train(cfg, evaluator=evaluator if args.eval_every else None)
    train_s = time.perf_counter() - t0 - eval_s
    # `ganforge eval RUN --data-dir DIR`: the generator file, the data from its provenance, the default extractor.
    scores = evaluate(result.generator_path, data_dir=args.data_dir, n=args.n, device=args.device)
    write_text_atomic(run_dir / "eval.json", json.dumps(scores, indent=2) + "\n")
    return {
        "preset": preset,
        "seed": seed,
        "steps": result.step,
        "dataset": _dataset_name(result.generator_path),
        "run_dir": str(run_dir),
        "train_s": train_s,
        **{key: scores.get(key) for key, *_ in COLUMNS if key != "train_s"},
        "num_modes": scores["num_modes"],
        "reference": scores["reference"],
    }


def _dataset_name(generator_path: Path) -> str:
    from ganforge.checkpoint import load_generator

    provenance = getattr(load_generator(generator_path), "provenance", None) or {}
    return str(provenance.get("dataset", "?"))


def format_row(label: str, row: dict[str, Any]) -> str:
    cells = []
    for key, header, fmt, _ in COLUMNS:
        value = row.get(key)
        if value is None:
            if key not in OPTIONAL:
                cells.append(f"{header} -")
        elif key == "modes_covered" and row.get("num_modes"):
            cells.append(f"{header} {value}/{row['num_modes']}")
        else:
            cells.append(f"{header} {fmt.format(value).strip()}")
    return f"{label:<14} " + "  ".join(cells)


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The median and the worst seed of each column (None where a metric was not computed)."""
    median: dict[str, Any] = {}
    worst: dict[str, Any] = {}
    for key, _, _, pick in COLUMNS:
        values = [row[key] for row in rows if row.get(key) is not None]
        median[key] = statistics.median(values) if values else None
        worst[key] = pick(values) if values else None
    median["num_modes"] = worst["num_modes"] = rows[0].get("num_modes")
    return {"median": median, "worst": worst}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from ganforge.errors import GanforgeError
    from ganforge.presets import get_preset

    try:
        base = with_overrides(get_preset(args.preset), args.set)
    except GanforgeError as e:
        print(f"quality: error: {e}", file=sys.stderr)
        return 2
    taken = [Path(args.out) / f"{args.preset}-s{seed}" for seed in args.seeds]
    taken = [path for path in taken if path.exists()]
    if taken:  # refuse before training anything, not after the first seed's minutes
        print(f"quality: error: {taken[0]} exists; remove it or pass another --out", file=sys.stderr)
        return 2
    threads = os.environ.get("OMP_NUM_THREADS", "unset")
    print(
        f"{args.preset}: {args.steps or base.steps} steps, batch {base.batch_size}, data {base.data}, "
        f"reference {args.data_dir or 'default'}, n {args.n}, OMP_NUM_THREADS {threads}"
        + "".join(f", {pair}" for pair in args.set),
        flush=True,
    )
    rows = []
    for seed in args.seeds:
        row = run_one(args.preset, seed, args)
        rows.append(row)
        print(format_row(f"seed {seed}", row) + f"  ({row['dataset']}, {row['run_dir']})", flush=True)
    summary = summarize(rows)
    line = f"{format_row('median', summary['median'])}  |  worst: {format_row('', summary['worst']).strip()}"
    print(line, flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps({"runs": rows, **summary}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
