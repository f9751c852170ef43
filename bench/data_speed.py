#!/usr/bin/env python3
"""Data speed: packing JPEGs, the training step from a packed set against in memory, a folder's second start.

    python bench/data_speed.py --work /tmp/data_speed                 # all three parts
    python bench/data_speed.py --work /tmp/data_speed --part pack     # or: step, start
    python bench/data_speed.py --part pack --rounds 4 --baseline-src OLD/src   # beside another tree's code

Run it pinned to one core with one thread (`taskset -c 0 env OMP_NUM_THREADS=1 ...`): the figures are per core.
Every part first prints the CPU, the cores this process may use, OMP_NUM_THREADS and the load average.

pack:  1,000 photo-like JPEGs of 512x384 (made here, quality 90) packed to 64x64 and to 256x256 by
       `pack(..., workers=1)` (decoded in the calling process), each run in a fresh process; images a second of
       that process's CPU time (the whole call: listing, probe, decode, resize, writing, hashing) and of wall
       time; with --baseline-src, the same runs of another tree alternate with this one's. Then where one
       image's time goes: the (reduced) JPEG decode, decode() in all, a full-size decode.
step:  train_step on batches from packed: (memory-mapped) and from the same images in memory, and from a second
       in-memory copy (the control), in rounds whose order rotates, in one process, for the dcgan arch at 64x64
       and for the seed preset; the packed / in-memory ratio of steps a CPU second with a 95% interval, the
       control's ratio beside it, and Batches.next() alone from the map and from memory.
start: a folder of 50,000 JPEGs of 128x96; a training run to its first step (dcgan 64x64), --starts times in
       fresh processes (the first packs into the cache); the seconds from the process start to each stage:
       imports, data ready (scan, cache key, open the pack), torch._dynamo imported, first step done.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]


def photo_like(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A smooth random picture with edges and grain, which JPEG codes like a photo (not like pure noise)."""
    coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3)).astype(np.float32)
    from PIL import Image

    smooth = np.asarray(Image.fromarray(coarse.astype(np.uint8)).resize((width, height), Image.Resampling.BICUBIC))
    y, x = np.mgrid[0:height, 0:width]
    edges = ((x // 64 + y // 48) % 2 * 40).astype(np.float32)[..., None]
    grain = rng.normal(0, 6, (height, width, 3))
    return np.clip(smooth * 0.8 + edges + grain, 0, 255).astype(np.uint8)


def make_jpegs(folder: Path, count: int, height: int, width: int, seed: int = 0) -> None:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    base = [photo_like(rng, height, width) for _ in range(16)]
    for k in range(count):  # 16 pictures, each shifted and with its own grain: cheap to make, distinct files
        path = folder / f"{k:05d}.jpg"
        if path.is_file():  # made by an earlier, interrupted call
            continue
        shifted = np.roll(base[k % 16], (k * 7) % height, axis=0)
        grain = np.random.default_rng((seed, k)).integers(-4, 5, shifted.shape, dtype=np.int16)
        Image.fromarray(np.clip(shifted + grain, 0, 255).astype(np.uint8)).save(path, quality=90)


def conditions() -> str:
    """The CPU, this process's cores, its thread setting and the machine's load: what the figures were measured on."""
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    model = next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    load = os.getloadavg() if hasattr(os, "getloadavg") else ("?",)
    return (
        f"CPU {model}, {os.cpu_count()} logical CPUs; this process pinned to cores {cores}; OMP_NUM_THREADS="
        f"{os.environ.get('OMP_NUM_THREADS', 'unset')}; load average {', '.join(f'{v:.2f}' for v in load)}"
    )


PACK_ONE = """
import json, shutil, sys, time
from ganforge.data.pack import pack
src, out, size = sys.argv[1], sys.argv[2], int(sys.argv[3])
shutil.rmtree(out, ignore_errors=True)
t0, w0 = time.process_time(), time.perf_counter()
result = pack("folder:" + src, out, image_size=size, workers=1)
cpu, wall = time.process_time() - t0, time.perf_counter() - w0
shutil.rmtree(out)
print(json.dumps({"count": result.count, "cpu": cpu, "wall": wall, "filter": result.resize_filter}))
"""


def pack_rates(src: Path, out: Path, size: int, code: Path, rounds: int) -> list[dict[str, Any]]:
    """`pack(folder, workers=1)` in a fresh process (imports not timed) with `code` on PYTHONPATH, `rounds` times."""
    env = {**os.environ, "PYTHONPATH": str(code)}
    runs = []
    for _ in range(rounds):
        proc = subprocess.run([sys.executable, "-c", PACK_ONE, str(src), str(out), str(size)], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        runs.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    return runs


def part_pack(work: Path, rounds: int, baseline: Path | None) -> None:
    from ganforge.decoding import decode, draft_scale, filter_for, open_image

    src = work / "jpegs"
    make_jpegs(src, 1_000, 384, 512)
    files = sorted(src.glob("*.jpg"))
    print(f"pack: {conditions()}")
    print(f"pack: 1,000 JPEGs 512x384 quality 90 ({sum(f.stat().st_size for f in files) / 1e6:.0f} MB), 1 worker "
          "(`pack(..., workers=1)`: decoded in the calling process), a fresh process a run; rates are images a "
          "second of that process's CPU time (the whole call: listing, probe, decode, resize, writing, hashing) "
          "and of wall time")  # fmt: skip
    trees = [("this tree", REPO / "src")] + ([("baseline", baseline)] if baseline else [])
    for size in (64, 256):
        # 1. The whole pack() call, alternating with a baseline tree (if given) round by round.
        results: dict[str, list[dict[str, Any]]] = {name: [] for name, _ in trees}
        for r in range(rounds):
            for name, code in trees if r % 2 == 0 else trees[::-1]:
                results[name] += pack_rates(src, work / f"packed{size}", size, code, 1)
        for name, runs in results.items():
            cpu_rates = [run["count"] / run["cpu"] for run in runs]
            wall_rates = [run["count"] / run["wall"] for run in runs]
            print(f"  {size}x{size}, {name}: {statistics.median(cpu_rates):6.0f} img/s per CPU second (median of "
                  f"{len(runs)}: {', '.join(f'{v:.0f}' for v in cpu_rates)}), {statistics.median(wall_rates):6.0f} "
                  f"img/s wall; filter {runs[0]['filter']}")  # fmt: skip
        if baseline:
            pairs = zip(results["this tree"], results["baseline"], strict=True)
            ratios = [b["cpu"] / t["cpu"] for t, b in pairs]
            print(f"  {size}x{size}: speed-up over the baseline, CPU time, median of paired runs: "
                  f"{statistics.median(ratios):.3f}")  # fmt: skip
        # 2. Where one image's time goes, in CPU time of this process (the best of 3 passes over 300 files): the
        #    (reduced) JPEG decode alone; decode() in all (with the resize); a full-size decode alone.
        side = 384
        name = filter_for(side, size)
        scale = draft_scale(side, size, name)
        t_open = best_time(lambda s=scale: [_drafted(f, s) for f in files[:300]]) / 300
        t_all = best_time(lambda n=size: [decode(f, n, 3) for f in files[:300]]) / 300
        t_full = best_time(lambda: [open_image(f) for f in files[:300]]) / 300
        w, h = _drafted(files[0], scale).size
        # 3. What the reduced path changes: decode() against a full-size decode resized by the same filter in one call.
        diffs = [pixels_vs_full(f, size, name) for f in files[:300]]
        print(f"  {size}x{size} pixels, decode() against a full-size decode and one {name} resize (300 images): max "
              f"abs {max(d[0] for d in diffs)}, mean abs {statistics.fmean(d[1] for d in diffs):.3f}, PSNR mean "
              f"{statistics.fmean(d[2] for d in diffs):.1f} dB (lowest {min(d[2] for d in diffs):.1f})")  # fmt: skip
        print(f"  {size}x{size} per image, CPU time: decode at 1/{scale} scale ({w}x{h})"
              f" {t_open * 1e3:.2f} ms, then {name} to {size}x{size}: decode() in all {t_all * 1e3:.2f} ms = "
              f"{1 / t_all:.0f} img/s per core; a full-size decode alone {t_full * 1e3:.2f} ms")  # fmt: skip


def best_time(work: Any, passes: int = 3) -> float:
    """The least CPU time of `passes` runs of work() (the first pass also warms the page cache and the caches)."""
    times = []
    for _ in range(passes):
        t0 = time.process_time()
        work()
        times.append(time.process_time() - t0)
    return min(times)


def pixels_vs_full(path: Path, size: int, name: str) -> tuple[int, float, float]:
    """(max abs, mean abs, PSNR dB) of decode()'s pixels against the full-size decode resized by `name` at once."""
    from PIL import Image

    from ganforge.decoding import FILTERS, decode

    got = decode(path, size, 3)[0].astype(np.float64)
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        full = np.asarray(image.resize((size, size), FILTERS[name], box=(left, top, left + side, top + side)))
    diff = np.abs(got - full)
    mse = float(np.mean(diff**2))
    return int(diff.max()), float(diff.mean()), 10 * math.log10(255**2 / mse) if mse else math.inf


def _drafted(path: Path, scale: int) -> Any:
    """A JPEG decoded at 1/scale in the DCT, as decode() does it."""
    from PIL import Image

    from ganforge.decoding import _load

    with Image.open(path) as opened:
        return _load(opened, scale)[0]


def interval(ratios: list[float]) -> tuple[float, float, float]:
    """(geometric mean, low, high) of per-round ratios: a 95% t-interval on their logs."""
    logs = [math.log(r) for r in ratios]
    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), math.nan, math.nan
    half = T95.get(len(logs) - 1, 2.0) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


T95 = {1: 12.71, 2: 4.30, 3: 3.18, 4: 2.78, 5: 2.57, 6: 2.45, 7: 2.36, 8: 2.31, 9: 2.26, 10: 2.23, 11: 2.20, 12: 2.18,
       13: 2.16, 14: 2.14, 15: 2.13, 16: 2.12, 17: 2.11, 18: 2.10, 19: 2.09, 20: 2.09, 25: 2.06, 30: 2.04}  # fmt: skip


def step_ratio(cfg: Any, mapped: Any, rounds: int, steps: int) -> dict[str, Any]:
    """Steps a CPU second over paired rounds (the order rotating each round) from: packed: as training reads it
    (a set under batches._LOAD_MAPPED_BYTES is read whole), packed: streamed from the map batch by batch whatever
    its size, the same images in memory, and a second in-memory copy (the control: what pairing alone shows)."""
    import torch

    import ganforge.batches
    from ganforge.batches import Batches
    from ganforge.train import build_state, train_step

    in_memory = type(mapped)(**{**mapped.__dict__})  # a copy of the Dataset, its images read into memory
    in_memory.images = mapped.in_memory()
    control = type(mapped)(**{**in_memory.__dict__})
    control.images = in_memory.images.clone()
    cpu = torch.device("cpu")
    runs = {}
    for name, ds in (("packed", mapped), ("streamed", mapped), ("memory", in_memory), ("control", control)):
        torch.manual_seed(0)
        limit = ganforge.batches._LOAD_MAPPED_BYTES
        ganforge.batches._LOAD_MAPPED_BYTES = 0 if name == "streamed" else limit
        runs[name] = (build_state(cfg, cpu), Batches(ds, cfg.batch_size, seed=0, device=cpu))
        ganforge.batches._LOAD_MAPPED_BYTES = limit
        for _ in range(5):  # warm up
            train_step(runs[name][0], runs[name][1].next, cfg)
    # Steps a second of this process's CPU time (with OMP_NUM_THREADS=1: of the one core it runs on), which
    # other jobs on a shared core disturb far less than wall time; wall time is reported beside it.
    order = list(runs)
    rates: dict[str, list[float]] = {f"{n}{w}": [] for n in order for w in ("", "_wall")}
    for r in range(rounds):
        for name in order[r % len(order) :] + order[: r % len(order)]:
            state, batches = runs[name]
            t0, w0 = time.process_time(), time.perf_counter()
            for _ in range(steps):
                train_step(state, batches.next, cfg)
            rates[name].append(steps / (time.process_time() - t0))
            rates[name + "_wall"].append(steps / (time.perf_counter() - w0))
    got: dict[str, Any] = {name: statistics.median(rates[name]) for name in order}
    for name in ("packed", "streamed", "control"):
        ratios = [a / m for a, m in zip(rates[name], rates["memory"], strict=True)]
        got[name + "_ratio"] = (*interval(ratios), statistics.median(ratios))
        walls = [a / m for a, m in zip(rates[name + "_wall"], rates["memory_wall"], strict=True)]
        got[name + "_wall"] = statistics.median(walls)
    got["loaded"] = runs["packed"][1].images is not None
    got["cpu_share"] = statistics.median([w / c for w, c in zip(rates["memory_wall"], rates["memory"], strict=True)])
    return got


def fetch_cost(mapped: Any, batch_size: int, batches: int = 2000) -> tuple[float, float]:
    """CPU microseconds of Batches.next() alone: (streamed from the map, from memory)."""
    import torch

    import ganforge.batches
    from ganforge.batches import Batches

    in_memory = type(mapped)(**{**mapped.__dict__})
    in_memory.images = mapped.in_memory()
    costs = []
    for ds in (mapped, in_memory):
        limit, ganforge.batches._LOAD_MAPPED_BYTES = ganforge.batches._LOAD_MAPPED_BYTES, 0  # stream from the map
        b = Batches(ds, batch_size, seed=0, device=torch.device("cpu"))
        ganforge.batches._LOAD_MAPPED_BYTES = limit
        for _ in range(50):
            b.next()
        t0 = time.process_time()
        for _ in range(batches):
            b.next()
        costs.append((time.process_time() - t0) / batches * 1e6)
    return costs[0], costs[1]


def part_step(work: Path, rounds: int, dcgan_steps: int, only: str) -> None:
    import dataclasses

    from ganforge.config import ModelConfig
    from ganforge.data import load_dataset
    from ganforge.data.pack import pack
    from ganforge.presets import PRESETS
    from ganforge.speed import resolve_auto

    src = work / "jpegs"
    make_jpegs(src, 1_000, 384, 512)
    p64 = work / "step64"
    if not p64.is_dir():
        pack(f"folder:{src}", p64, image_size=64)
    digits = work / "digits28"
    if not digits.is_dir():
        pack("mnist-sample", digits)
    import torch

    dcgan = dataclasses.replace(
        PRESETS["seed"],
        model=ModelConfig(arch="dcgan", image_size=64, channels=3, z_dim=100, width=32),
        batch_size=32,
        data=f"packed:{p64}",
    )
    for name, cfg, data, steps in (
        ("dcgan 64x64 RGB, width 32, batch 32", dcgan, p64, dcgan_steps),
        ("seed preset (mlp 28x28, batch 64)", PRESETS["seed"], digits, 200),
    ):
        if only != "both" and not name.startswith(only):
            continue
        cfg = resolve_auto(cfg, torch.device("cpu"))
        mapped = load_dataset(f"packed:{data}")
        print(f"step: {conditions()}")
        assert mapped.is_mapped
        fetch_mapped, fetch_memory = fetch_cost(mapped, cfg.batch_size)
        print(f"fetch: {name}: Batches.next() {fetch_mapped:.0f} us streamed from the map, {fetch_memory:.0f} us "
              "from memory")  # fmt: skip
        got = step_ratio(cfg, mapped, rounds, steps)
        print(f"step: {name}: steps/CPU-s: packed {got['packed']:.2f} (read whole: {got['loaded']}), streamed "
              f"{got['streamed']:.2f}, in memory {got['memory']:.2f}, control {got['control']:.2f}; {rounds} "
              f"rounds of {steps} steps, precision {cfg.precision}; this process had {got['cpu_share']:.0%} of its "
              "core")  # fmt: skip
        for side in ("packed", "streamed", "control"):
            mean, low, high, median = got[side + "_ratio"]
            print(f"step: {name}: {side} / in memory {mean:.3f} (95% interval {low:.3f} to {high:.3f}; median "
                  f"{median:.3f}; wall time {got[side + '_wall']:.3f})")  # fmt: skip


FIRST_STEP = """
import sys, time
def mark(name):
    print(f"{name}_at={time.time()} cpu={time.process_time()}", flush=True)
mark("started")
import dataclasses
from ganforge.config import ModelConfig
from ganforge.loop import load_training_data
from ganforge.presets import PRESETS
from ganforge.train import train
mark("imported")
cfg = dataclasses.replace(PRESETS["seed"], data=sys.argv[1], steps=1, out_dir=sys.argv[2], sample_every=0,
    checkpoint_every=0, check_every=0, log_every=0, device="cpu",
    model=ModelConfig(arch="dcgan", image_size=64, channels=3, z_dim=100, width=64))
dataset = load_training_data(cfg)  # what train() would call first: scan, cache key, open the pack
mark("data")
import torch._dynamo  # what torch.optim.Adam imports on its first use inside train(), timed apart here
mark("dynamo")
def on_step(step, logged):
    if step == 1:
        mark("first_step")
train(cfg, dataset=dataset, on_step=on_step)
"""


def part_start(work: Path, count: int, runs: int, baseline: Path | None) -> None:
    folder = work / f"folder{count}"
    make_jpegs(folder, count, 96, 128, seed=1)
    home = work / "home"
    shutil.rmtree(home, ignore_errors=True)
    print(f"start: {conditions()}")
    print("start: seconds from the process start (python -c) to each mark: wall (CPU time of the process)")
    trees = [("this tree", REPO / "src")] + ([("baseline", baseline)] if baseline else [])
    plan = [("first (packs into the cache)", trees[0])]
    for k in range(runs - 1):  # later starts alternate between the trees (both read the same pack)
        plan += [(f"start {k + 2}, {name}", (name, code)) for name, code in (trees if k % 2 == 0 else trees[::-1])]
    for run, (_, code) in plan:
        env = {**os.environ, "GANFORGE_HOME": str(home), "PYTHONPATH": str(code)}
        out = work / "start-run"
        shutil.rmtree(out, ignore_errors=True)
        t0 = time.time()
        proc = subprocess.run([sys.executable, "-c", FIRST_STEP, f"folder:{folder}", str(out)], env=env,
                              capture_output=True, text=True, check=True)  # fmt: skip
        marks = {}
        for line in proc.stdout.splitlines():
            if "_at=" in line:
                key, rest = line.split("_at=")
                wall, cpu = rest.split(" cpu=")
                marks[key] = (float(wall) - t0, float(cpu))
        steps = ("started", "imported", "data", "dynamo", "first_step")
        labels = ("python up", "ganforge+torch imported", "data ready", "torch._dynamo imported", "first step done")
        parts = [f"{label} {marks[k][0]:.2f} ({marks[k][1]:.2f})" for k, label in zip(steps, labels, strict=True)]
        first = marks["first_step"]
        print(f"start: {count:,}-image folder, {run}: {'; '.join(parts)}; this process had "
              f"{first[1] / first[0]:.0%} of a core")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", default="/tmp/data_speed", help="scratch folder for the made data")
    parser.add_argument("--part", choices=("pack", "step", "start", "all"), default="all")
    parser.add_argument("--rounds", type=int, default=6, help="paired rounds (pack: runs of each tree)")
    parser.add_argument("--baseline-src", type=Path, help="pack, start: another tree's src/ to time beside this one's")
    parser.add_argument("--dcgan-steps", type=int, default=5, help="dcgan steps a round (the seed preset: 200)")
    parser.add_argument("--step-only", choices=("both", "dcgan", "seed"), default="both")
    parser.add_argument("--folder-count", type=int, default=50_000)
    parser.add_argument("--starts", type=int, default=4, help="start: runs in fresh processes (the first packs)")
    args = parser.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("GANFORGE_HOME", str(work / "home"))
    if args.part in ("pack", "all"):
        part_pack(work, args.rounds, args.baseline_src)
    if args.part in ("step", "all"):
        part_step(work, args.rounds, args.dcgan_steps, args.step_only)
    if args.part in ("start", "all"):
        part_start(work, args.folder_count, args.starts, args.baseline_src)


if __name__ == "__main__":
    main()
