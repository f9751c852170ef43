"""Training-step speed in float32 against bfloat16 autocast, paired (fp32 then bf16 each round), for given presets.

    python bench/precision_speed.py --presets seed dcgan --rounds 3

Random data of the preset's shape, the preset's batch; prints img/s per round and the paired bf16/fp32 ratios.
Quality under bf16 is not measured here.
"""

from __future__ import annotations

import argparse
import dataclasses
import time


def img_per_s(preset: str, precision: str, steps: int) -> float:
    import torch

    from ganforge.config import PRESETS
    from ganforge.train import build_state, train_step

    cfg = dataclasses.replace(PRESETS[preset], precision=precision)
    state = build_state(cfg, torch.device("cpu"))
    real = torch.rand(cfg.batch_size, *cfg.model.shape) * 2 - 1
    labels = torch.arange(cfg.batch_size) % cfg.model.num_classes if cfg.model.is_conditional else None

    def next_batch() -> tuple[torch.Tensor, torch.Tensor | None]:
        return real, labels

    for _ in range(10):  # warm-up
        train_step(state, next_batch, cfg)
    start = time.perf_counter()
    for _ in range(steps):
        train_step(state, next_batch, cfg)
    return steps * cfg.batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["seed", "dcgan"])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=100)
    args = parser.parse_args()
    from ganforge.precision import cpu_flags, cpu_model

    flags = cpu_flags()
    print(f"cpu: {cpu_model()}; " + ", ".join(f"{f}={'yes' if f in flags else 'no'}" for f in
                                              ("avx2", "avx512f", "avx512_bf16", "amx_bf16")))  # fmt: skip
    for preset in args.presets:
        fp32, bf16 = [], []
        for _ in range(args.rounds):
            fp32.append(img_per_s(preset, "fp32", args.steps))
            bf16.append(img_per_s(preset, "bf16", args.steps))
        ratios = ", ".join(f"{b / a:.2f}" for a, b in zip(fp32, bf16, strict=True))
        print(f"{preset}: fp32 {' '.join(f'{x:.0f}' for x in fp32)} img/s; bf16 {' '.join(f'{x:.0f}' for x in bf16)} "
              f"img/s; paired bf16/fp32 {ratios}")  # fmt: skip


if __name__ == "__main__":
    main()
