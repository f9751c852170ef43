#!/usr/bin/env python3
"""Short screens for the emoji-64 preset: each recipe trains for a fixed wall time, then `ganforge eval --n 2000`.

    taskset -c 1 env OMP_NUM_THREADS=1 python bench/emoji_screens.py base resnet ada --wall 360

Every screen is `ganforge train` with BASE's flags plus its own, stopped by SIGINT after --wall seconds (the loop
finishes its step, saves a checkpoint and generator.safetensors), then scored by `ganforge eval RUN --n 2000`
against the 367 test-split emoji on the shipped `emoji` extractor. One JSON line a screen (command, steps reached,
wall, every eval.json figure) is appended to --log. Constant learning rates: a wall-time stop knows no last step.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

BASE = (
    "--data emoji --image-size 64 --channels 3 --arch dcgan --width 32 --z-dim 128 --num-classes 9 --batch-size 64 "
    "--augment diffaugment --r1 1 --reg-every 8 --ema-decay 0.999 --lr-g 4e-4 --lr-d 4e-4"
)

# name -> flags added to BASE (argparse keeps the last value of a repeated flag)
SCREENS = {
    "base": "",
    "resnet": "--arch resnet",
    "ada": "--augment ada",
    "no-augment": "--augment none",
    "r1-0.1": "--r1 0.1",
    "r1-10": "--r1 10",
    "d64": "--d-width 64",
    "w48": "--width 48",
    "betas0": "--betas 0 0.99",
    "lr2e-4": "--lr-g 2e-4 --lr-d 2e-4",
    "batch32": "--batch-size 32",
    "uncond": "--num-classes 0",
    "mbstd": "--minibatch-std",
    "hinge": "--loss hinge",
    "sn": "--spectral-norm",
    # longer, with FID every 500 steps: does no augmentation keep its lead past 5 minutes?
    "none-long": "--augment none --eval-every 500",
    "ada-long": "--augment ada --eval-every 500",
    # second round, on ADA
    "ada-r1-10": "--augment ada --r1 10",
    "ada-r1-0.1": "--augment ada --r1 0.1",
    "ada-d64": "--augment ada --d-width 64",
    "ada-betas0": "--augment ada --betas 0 0.99",
    "ada-mbstd": "--augment ada --minibatch-std",
    "ada-uncond": "--augment ada --num-classes 0",
}


def run_screen(name: str, flags: str, wall_s: float, root: Path, seed: int) -> dict[str, object]:
    """Train one screen for wall_s seconds, evaluate it on 2,000 samples; the JSON line."""
    out = root / name
    train = ["ganforge", "train", *shlex.split(BASE), *shlex.split(flags)]
    train += ["--steps", "1000000", "--seed", str(seed), "--out", str(out), "--log-every", "100"]
    train += ["--sample-every", "0", "--checkpoint-every", "100000", "--check-every", "0"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(train)
    try:
        proc.wait(timeout=wall_s)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGINT)  # the loop stops after this step and saves
        proc.wait()
    wall = time.perf_counter() - t0
    saved = sorted((out / "checkpoints").glob("step_*.pt"))  # the stop saves one: the steps reached
    steps = int(saved[-1].stem.removeprefix("step_")) if saved else 0
    t1 = time.perf_counter()
    subprocess.run(["ganforge", "eval", str(out), "--n", "2000"], check=True)
    result = json.loads((out / "eval.json").read_text())
    keys = ("fid", "kid", "precision", "recall", "density", "coverage", "modes_covered", "mode_kl", "class_match")
    return {
        "screen": name,
        "flags": flags,
        "command": " ".join(train),
        "seed": seed,
        "steps": steps,
        "wall_s": round(wall, 1),
        "eval_s": round(time.perf_counter() - t1, 1),
        **{k: result.get(k) for k in keys},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("screens", nargs="+", choices=sorted(SCREENS))
    parser.add_argument("--wall", type=float, default=360.0, help="training seconds a screen (default 360)")
    parser.add_argument("--root", type=Path, default=Path("runs/emoji-screens"))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--log", type=Path, default=Path("docs/measurements/emoji-screens.jsonl"))
    args = parser.parse_args()
    for name in args.screens:
        row = run_screen(name, SCREENS[name], args.wall, args.root, args.seed)
        with args.log.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(json.dumps(row), file=sys.stderr)


if __name__ == "__main__":
    main()
