"""Training-step speed of speed options side by side: precision, channels_last, torch.compile, paired by round.

    python bench/step_speed.py --presets seed dcgan --variants fp32 bf16 --rounds 3
    python bench/step_speed.py --presets dcgan --variants fp32 channels_last compile --rounds 3
    python bench/step_speed.py --device cuda --presets seed dcgan --variants fp32 bf16 compile-ro --steps 500

Each round runs every variant once, in the order given, on random data of the preset's shape and its batch;
it prints img/s per round and each variant's paired ratio to the first. Warm-up steps (compilation, CUDA
graph capture) are not timed. Quality is not measured here.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics
import time
from typing import Any

# variant name -> TrainConfig fields it sets
VARIANTS: dict[str, dict[str, Any]] = {
    "fp32": {"precision": "fp32"},
    "auto": {},  # the default: what --precision auto resolves to on this machine
    "bf16": {"precision": "bf16"},
    "fp16": {"precision": "fp16"},
    "channels_last": {"precision": "fp32", "channels_last": True},
    "bf16+channels_last": {"precision": "bf16", "channels_last": True},
    "compile": {"precision": "fp32", "compile": "default"},
    "compile-ro": {"precision": "fp32", "compile": "reduce-overhead"},
    "bf16+compile-ro": {"precision": "bf16", "compile": "reduce-overhead"},
}


def img_per_s(preset: str, variant: str, steps: int, device_name: str, warmup: int) -> float:
    import torch

    from ganforge import speed
    from ganforge.presets import PRESETS
    from ganforge.train import build_state, train_step

    device = torch.device(device_name)
    cfg = speed.resolve_auto(dataclasses.replace(PRESETS[preset], device=device_name, **VARIANTS[variant]), device)
    state = build_state(cfg, device)
    real = torch.rand(cfg.batch_size, *cfg.model.shape, device=device) * 2 - 1
    if cfg.channels_last:
        real = real.contiguous(memory_format=torch.channels_last)
    labels = torch.arange(cfg.batch_size, device=device) % cfg.model.num_classes if cfg.model.is_conditional else None

    def next_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        return real, labels

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        train_step(state, next_batch, cfg)
    sync()
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, next_batch, cfg)
    sync()
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["seed", "dcgan"])
    parser.add_argument("--variants", nargs="+", default=["fp32", "bf16"], choices=list(VARIANTS))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100, help="timed steps a variant and round")
    parser.add_argument("--warmup", type=int, default=20, help="untimed steps first (compilation happens here)")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    from ganforge.precision import cpu_flags, cpu_model

    flags = cpu_flags()
    print(f"cpu: {cpu_model()}; " + ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in
                                              ("avx2", "avx512f", "avx512_bf16", "amx_bf16")))  # fmt: skip
    if args.device.startswith("cuda"):
        print(f"gpu: {torch.cuda.get_device_name(torch.device(args.device))}; torch {torch.__version__}")
    print(
        f"threads {torch.get_num_threads()}, {args.steps} timed steps after {args.warmup} warm-up, {args.rounds} rounds"
    )
    for preset in args.presets:
        rates: dict[str, list[float]] = {v: [] for v in args.variants}
        for _ in range(args.rounds):
            for variant in args.variants:
                try:
                    rates[variant].append(img_per_s(preset, variant, args.steps, args.device, args.warmup))
                except Exception as e:  # a variant this machine cannot run (say, no C++ compiler): report, go on
                    print(f"{preset} {variant}: failed: {type(e).__name__}: {str(e).splitlines()[0][:200]}")
                    rates[variant].append(float("nan"))
        base = rates[args.variants[0]]
        for variant, values in rates.items():
            ratios = [v / b for v, b in zip(values, base, strict=True)]
            print(f"{preset} {variant:>20}: img/s {' '.join(f'{x:.0f}' for x in values)}; "
                  f"paired /{args.variants[0]} {' '.join(f'{r:.2f}' for r in ratios)} "
                  f"(median {statistics.median(ratios):.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
