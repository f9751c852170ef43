"""`ganforge train`: build one TrainConfig from a preset and flags, then call ganforge.train."""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from pathlib import Path
from typing import Any

from ganforge.cli.common import add_device_arg, is_terminal
from ganforge.config import LOSSES, PRESETS, TrainConfig, get_preset
from ganforge.errors import ConfigError
from ganforge.train import RunResult, train

# flag -> TrainConfig field, for the run settings a user may override
_OVERRIDES = (
    "data", "data_dir", "steps", "batch_size", "seed", "device", "loss", "lr_g", "lr_d", "ema_decay",
    "log_every", "checkpoint_every", "sample_every", "eval_every",
)  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN", description="Train a GAN and write a run directory.")
    p.add_argument("--preset", default=None, help=f"one of {', '.join(sorted(PRESETS))} (default: seed)")
    p.add_argument(
        "--data", default=None, help="data spec: mnist, mnist-sample, fashion-mnist, idx:DIR, folder:DIR, toy:ring8"
    )
    p.add_argument("--data-dir", default=None, help="folder to look in first for mnist / fashion-mnist files")
    p.add_argument("--steps", type=int, default=None, help="the run's total number of steps (also when resuming)")
    p.add_argument("--batch-size", type=int, default=None, help="real images a step")
    p.add_argument("--out", default=None, help="run directory (default: runs/PRESET)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    add_device_arg(p)
    p.add_argument("--loss", choices=LOSSES, default=None)
    p.add_argument("--lr-g", type=float, default=None)
    p.add_argument("--lr-d", type=float, default=None)
    p.add_argument("--ema-decay", type=float, default=None, help="EMA of G (0 = off)")
    p.add_argument("--log-every", type=int, default=None, help="steps between log lines")
    p.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    p.add_argument("--sample-every", type=int, default=None, help="steps between sample grids (0 = off)")
    p.add_argument("--eval-every", type=int, default=None, help="steps between metric evaluations (0 = off)")
    p.add_argument(
        "--num-classes",
        type=int,
        default=None,
        help="classes of a conditional model (labeled data; 10 for MNIST)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Preset (or the run's own config.json when resuming), then the flags given."""
    base = get_preset(args.preset or "seed")
    out = args.out or base.out_dir
    saved = Path(out) / "config.json"
    if args.resume and saved.is_file():
        try:
            base = TrainConfig.from_dict(json.loads(saved.read_text()))
        except (json.JSONDecodeError, TypeError) as e:
            raise ConfigError(f"{saved} is not a valid run config ({e}); fix or delete it") from e
    changes: dict[str, Any] = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    if args.num_classes is not None:
        changes["model"] = dataclasses.replace(base.model, num_classes=args.num_classes)
    return dataclasses.replace(base, out_dir=out, **changes)


def run(args: argparse.Namespace) -> int:
    cfg = resolve_config(args)
    if args.dry_run:
        print(cfg.to_json())
        return 0
    result = train(cfg, resume=args.resume, on_step=_progress(cfg) if is_terminal() else None)
    print(summary(result, cfg))
    return 130 if result.interrupted else 0


def _progress(cfg: TrainConfig) -> Any:
    """A tqdm bar with ETA and the latest losses; log lines are quieted while it shows."""
    from tqdm import tqdm

    logging.getLogger("ganforge.train").setLevel(logging.WARNING)
    bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, leave=True)

    def on_step(step: int, logged: dict[str, float] | None) -> None:
        bar.update(step - bar.n)
        if logged:
            bar.set_postfix(loss_d=f"{logged['loss_d']:.3f}", loss_g=f"{logged['loss_g']:.3f}",
                            img_s=f"{logged['img_per_s']:.0f}")  # fmt: skip
        if step >= cfg.steps:
            bar.close()

    return on_step


def summary(result: RunResult, cfg: TrainConfig) -> str:
    """The few lines printed at the end of a run."""
    losses = "  ".join(f"{k} {v:.4f}" for k, v in result.final.items() if k in ("loss_d", "loss_g"))
    lines = [
        f"{'stopped' if result.interrupted else 'done'}: {result.run_dir}  step {result.step}/{cfg.steps}",
        f"  trained {result.steps_trained} steps in {result.seconds:.1f} s ({result.img_per_s:.0f} img/s)",
    ]
    if losses:
        lines.append(f"  final {losses}")
    lines.append(f"  generator: {result.generator_path}")
    if result.samples_path:
        lines.append(f"  samples:   {result.samples_path}")
    if result.interrupted:
        lines.append(f"  continue:  ganforge train --out {result.run_dir} --resume")
    return "\n".join(lines)
