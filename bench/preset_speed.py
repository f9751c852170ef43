"""Every preset's training step beside the plain `dcgan` step, paired by round (issue 8: what regularizers cost).

    python bench/preset_speed.py --rounds 3 --steps 100
    python bench/preset_speed.py --presets dcgan mnist-hq stacked-mnist --rounds 5

Each round times the first preset (default `dcgan`) and then every other one, as configured (its precision
`auto` resolved for this machine), on random data of the preset's shape and batch; it prints img/s per round and
each preset's ratio to the first preset in the same round. One train_step is one G update: with n_critic K it
also makes K D updates, so `wgan-gp` (K = 5) draws 5 real batches for each batch counted here. Quality is not
measured here; the step is timed, not data loading.
"""

from __future__ import annotations

import argparse
import statistics

from step_speed import img_per_s

from ganforge.presets import PRESETS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--presets", nargs="+", default=["dcgan", *sorted(set(PRESETS) - {"dcgan"})])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--steps", type=int, default=50, help="timed steps a preset and round")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    import torch

    from ganforge.precision import cpu_model

    print(f"cpu: {cpu_model()}; threads {torch.get_num_threads()}, {args.steps} timed steps after {args.warmup} "
          f"warm-up, {args.rounds} rounds; ratios are to {args.presets[0]} in the same round")  # fmt: skip
    rates: dict[str, list[float]] = {p: [] for p in args.presets}
    for _ in range(args.rounds):
        for preset in args.presets:
            rates[preset].append(img_per_s(preset, "auto", args.steps, args.device, args.warmup))
    base = rates[args.presets[0]]
    for preset, values in rates.items():
        ratios = [v / b for v, b in zip(values, base, strict=True)]
        cfg = PRESETS[preset]
        what = f"{cfg.model.arch}, batch {cfg.batch_size}" + (f", {cfg.n_critic} D steps" if cfg.n_critic > 1 else "")
        print(
            f"{preset:>14} ({what:>28}): img/s {' '.join(f'{x:8.0f}' for x in values)}; "
            f"/{args.presets[0]} {' '.join(f'{r:.2f}' for r in ratios)} (median {statistics.median(ratios):.2f})"
        )


if __name__ == "__main__":
    main()
