#!/usr/bin/env python3
"""Training from a packed set larger than memory: peak RSS of 200 steps at 256 px, and an exact resume.

    python bench/data_large.py --work /tmp/data_large --count 110000   # 110,000 x 256x256x3 = 21.6 GB
    python bench/data_large.py --work /tmp/data_large --count 11000 --keep   # a tenth, kept for a rerun

1. Writes `count` random 256x256 RGB images (seeded; 1,024 drawn, each reused with its index stamped in) straight
   into a packed dataset (ShardWriter).
2. Trains dcgan at 256 px for `steps` steps from packed: under /usr/bin/time -v: peak RSS ("Maximum resident
   set size"), time. The first start hashes the whole pack once (its digest); that is timed on its own first.
3. Trains the same run as steps/2, then --resume to steps, and compares its generator file with the
   uninterrupted run's, bit for bit.
The data is deleted at the end unless --keep.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def make_pack(out: Path, count: int, size: int = 256, seed: int = 0) -> float:
    from ganforge.data.writers import ShardWriter
    from ganforge.version import __version__

    if (out / "dataset.json").is_file():
        return 0.0
    t0 = time.perf_counter()
    writer = ShardWriter(out, (3, size, size))
    rng = np.random.default_rng(seed)
    # 1,024 random images, each written many times with its index stamped into its first row: every image
    # distinct, and the script spends its time writing, not drawing 20 GB of random numbers.
    pool = np.frombuffer(rng.bytes(1024 * size * size * 3), dtype=np.uint8).reshape(1024, size, size, 3).copy()
    for start in range(0, count, 256):
        n = min(256, count - start)
        batch = pool[(np.arange(start, start + n) * 7) % 1024].copy()
        batch[:, 0, :8, 0] = ((np.arange(start, start + n)[:, None] >> (8 * np.arange(8))) & 255).astype(np.uint8)
        writer.add_batch(batch)
    meta = {"count": count, "shape": [3, size, size], "num_classes": 0, "class_names": [], "resize_filter": "none",
            "resize_policy": "none", "resized": {"none": count}, "source": f"random (seed {seed})",
            "source_description": "bench/data_large.py", "skipped": [], "colour_to_grey": 0,
            "ganforge_version": __version__}  # fmt: skip
    writer.finish(None, meta)
    return time.perf_counter() - t0


def train_cmd(data: Path, out: Path, steps: int, resume: bool, width: int, batch: int) -> list[str]:
    cmd = [sys.executable, "-m", "ganforge", "train", "--preset", "seed", "--data", f"packed:{data}",
           "--arch", "dcgan", "--image-size", "256", "--channels", "3", "--width", str(width), "--z-dim", "64",
           "--batch-size", str(batch), "--steps", str(steps), "--out", str(out), "--log-every", "50",
           "--checkpoint-every", str(steps // 2 if not resume else steps), "--sample-every", "0",
           "--check-every", "0", "--precision", "fp32", "--device", "cpu"]  # fmt: skip
    return cmd + (["--resume"] if resume else [])


def timed(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """(peak RSS in GB, wall seconds) of a command under /usr/bin/time -v."""
    t0 = time.perf_counter()
    proc = subprocess.run(["/usr/bin/time", "-v", *cmd], env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}")
    rss_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", proc.stderr).group(1))  # type: ignore[union-attr]
    return rss_kb / 1e6, time.perf_counter() - t0


def same_weights(a: Path, b: Path) -> bool:
    """Whether two generator files hold the same tensors, bit for bit (their metadata may name other paths)."""
    import torch
    from safetensors.torch import load_file

    x, y = load_file(a), load_file(b)
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/data_large")
    parser.add_argument("--count", type=int, default=110_000)
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--width", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--keep", action="store_true", help="keep the made data for another run")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GANFORGE_HOME": str(work / "home"), "PYTHONPATH": str(REPO / "src")}
    data = work / "random256"
    made = make_pack(data, args.count)
    size_gb = sum(f.stat().st_size for f in data.iterdir()) / 1e9
    mem_gb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 1e9
    print(f"pack: {args.count:,} random 256x256 RGB images, {size_gb:.1f} GB on disk ({made:.0f} s to write); "
          f"this machine has {mem_gb:.1f} GB of memory")  # fmt: skip
    t0 = time.perf_counter()
    probe = f"from ganforge.data import load_dataset; print(len(load_dataset('packed:{data}')))"
    verify = subprocess.run([sys.executable, "-c", probe], env=env, capture_output=True, text=True)
    print(f"first open (hashes the pack once): {time.perf_counter() - t0:.1f} s -> {verify.stdout.strip()} images")
    for name in ("full", "split"):
        shutil.rmtree(work / name, ignore_errors=True)
    rss, wall = timed(train_cmd(data, work / "full", args.steps, False, args.width, args.batch_size), env)
    print(f"train: {args.steps} steps at 256 px (dcgan width {args.width}, batch {args.batch_size}): "
          f"peak RSS {rss:.2f} GB, {wall:.0f} s")  # fmt: skip
    rss_a, _ = timed(train_cmd(data, work / "split", args.steps // 2, False, args.width, args.batch_size), env)
    rss_b, _ = timed(train_cmd(data, work / "split", args.steps, True, args.width, args.batch_size), env)
    same = same_weights(work / "full" / "generator.safetensors", work / "split" / "generator.safetensors")
    print(f"resume: {args.steps // 2} steps, then --resume to {args.steps}: generator "
          f"{'identical, bit for bit' if same else 'DIFFERS'} to the uninterrupted run's "
          f"(peak RSS {rss_a:.2f} / {rss_b:.2f} GB)")  # fmt: skip
    if not args.keep:
        shutil.rmtree(work)
        print(f"deleted {work}")


if __name__ == "__main__":
    main()
