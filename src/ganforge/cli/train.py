"""`ganforge train`: build one TrainConfig from a preset and flags, then call ganforge.train."""

from __future__ import annotations

import argparse
import dataclasses
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ganforge.cli.common import add_device_arg, add_watermark_args, is_terminal, watermark_setting
from ganforge.config import (
    ARCHS,
    AUGMENTS,
    COMPILE_MODES,
    CONDITIONINGS,
    CONV_SIZES,
    LOSSES,
    LR_DECAYS,
    PRECISIONS,
    TrainConfig,
)
from ganforge.presets import PRESETS, get_preset

if TYPE_CHECKING:
    from ganforge.loop import RunResult

# flag -> TrainConfig field, for the run settings a user may override
_OVERRIDES = (
    "data", "data_dir", "steps", "batch_size", "class_balance", "seed", "device", "loss", "coarse_weight", "lr_g",
    "lr_d", "ema_decay",
    "log_every", "checkpoint_every", "sample_every", "eval_every", "check_every",
    "clip", "gp", "r1", "r2", "reg_every", "n_critic", "augment", "ada_target", "label_smoothing",
    "instance_noise", "mode_seeking", "precision", "compile", "lr_decay", "lr_decay_start",
)  # fmt: skip
_SWITCHES = ("gp_one_sided", "tensorboard", "sync_bn", "channels_last")  # store_true flags -> True fields
# flag -> ModelConfig field
_MODEL_OVERRIDES = (
    "arch", "image_size", "channels", "num_classes", "conditioning", "width", "d_width", "z_dim", "pac", "coarse_d",
)  # fmt: skip
_MODEL_SWITCHES = ("spectral_norm", "spectral_norm_g", "minibatch_std")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train a GAN", description="Train a GAN and write a run directory.")
    p.add_argument("--preset", default=None, help=f"one of {', '.join(sorted(PRESETS))} (default: seed)")
    p.add_argument(
        "--data",
        default=None,
        help="data spec: mnist, mnist-sample, stacked-mnist, fashion-mnist, emoji[:SIZE], idx:DIR, folder:DIR, "
        "zip:FILE, packed:DIR, toy:ring8, toy:grid25",
    )
    p.add_argument("--data-dir", default=None, help="folder to look in first for mnist / fashion-mnist files")
    p.add_argument("--steps", type=int, default=None, help="the run's total number of steps (also when resuming)")
    p.add_argument("--batch-size", type=int, default=None, help="real images a step")
    p.add_argument("--out", default=None, help="run directory (default: runs/PRESET)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest good checkpoint")
    p.add_argument("--resume-from", default=None, metavar="PATH", help="continue from this checkpoint file")
    add_device_arg(p)
    p.add_argument("--dry-run", action="store_true", help="print the resolved config and exit")

    m = p.add_argument_group("model")
    m.add_argument("--arch", choices=ARCHS, default=None)
    m.add_argument("--image-size", type=int, default=None, help=f"{', '.join(map(str, CONV_SIZES))} for the conv archs")
    m.add_argument("--channels", type=int, default=None, help="1 (grey) or 3 (RGB)")
    m.add_argument("--width", type=int, default=None, help="G's width (MLP units, conv base channels)")
    m.add_argument("--d-width", type=int, default=None, help="D's width when it differs from G's")
    m.add_argument("--z-dim", type=int, default=None)
    m.add_argument("--num-classes", type=int, default=None, help="classes of a conditional model (labeled data)")
    m.add_argument("--conditioning", choices=CONDITIONINGS, default=None, help="projection D (default) or acgan")
    m.add_argument("--spectral-norm", action="store_true", default=None, help="spectral normalization in D")
    m.add_argument("--spectral-norm-g", action="store_true", default=None, help="spectral normalization in G too")
    m.add_argument("--minibatch-std", action="store_true", default=None, help="minibatch standard deviation in D")
    m.add_argument("--pac", type=int, default=None, metavar="K", help="PacGAN: D judges K samples at once (1: off)")
    m.add_argument(
        "--coarse-d",
        type=int,
        default=None,
        metavar="SIDE",
        help="a second critic in D on the image pooled to SIDE x SIDE (7 for 28x28), its own loss term (0: off)",
    )

    o = p.add_argument_group("loss and optimizer")
    o.add_argument("--loss", choices=LOSSES, default=None)
    o.add_argument(
        "--coarse-weight", type=float, default=None, metavar="W", help="with --coarse-d: the coarse critic's weight"
    )
    o.add_argument("--lr-g", type=float, default=None)
    o.add_argument("--lr-d", type=float, default=None)
    o.add_argument("--lr-decay", choices=LR_DECAYS, default=None, help="decay both lrs to 0 (default none)")
    o.add_argument(
        "--lr-decay-start", type=float, default=None, metavar="F", help="fraction of the steps where it begins (0.5)"
    )
    o.add_argument("--betas", type=float, nargs=2, default=None, metavar=("B1", "B2"), help="Adam's betas")
    o.add_argument("--n-critic", type=int, default=None, help="D updates per G update")
    o.add_argument(
        "--class-balance",
        type=float,
        default=None,
        metavar="B",
        help="conditional runs: draw each class in proportion to count^(1 - B); 1: all equally often (default 0)",
    )
    o.add_argument("--ema-decay", type=float, default=None, help="EMA of G (0 = off)")
    o.add_argument("--no-ema-rampup", action="store_true", help="use the EMA decay from step 0 (no ramp-up)")
    o.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="autocast dtype (default auto: bf16 + channels_last for conv nets on a CPU with native bf16, else fp32)",
    )
    o.add_argument(
        "--compile", choices=COMPILE_MODES, default=None, help="torch.compile G and D (default off; see README)"
    )
    o.add_argument(
        "--channels-last", action="store_true", default=None, help="conv archs: NHWC memory format (see README)"
    )

    r = p.add_argument_group("regularizers and augmentation")
    r.add_argument("--clip", type=float, default=None, help="wgan: clip D's weights to [-C, C] (default 0.01)")
    r.add_argument("--gp", type=float, default=None, metavar="LAMBDA", help="WGAN-GP gradient penalty weight")
    r.add_argument("--gp-one-sided", action="store_true", default=None, help="penalize only norms above 1")
    r.add_argument("--r1", type=float, default=None, metavar="GAMMA", help="R1 penalty on real data")
    r.add_argument("--r2", type=float, default=None, metavar="GAMMA", help="R2 penalty on fake data")
    r.add_argument("--reg-every", type=int, default=None, metavar="K", help="lazy R1/R2 every K steps")
    r.add_argument("--augment", choices=AUGMENTS, default=None, help="differentiable augmentation of D's inputs")
    r.add_argument("--ada-target", type=float, default=None, help="ADA's target r_t (default 0.6)")
    r.add_argument("--label-smoothing", type=float, default=None, help="D's target for real data, e.g. 0.9")
    r.add_argument("--instance-noise", type=float, default=None, metavar="SIGMA", help="annealed to 0")
    r.add_argument(
        "--mode-seeking", type=float, default=None, metavar="W", help="weight of G's mode-seeking term (MSGAN)"
    )

    g = p.add_argument_group("logging and outputs")
    g.add_argument("--log-every", type=int, default=None, help="steps between log lines")
    g.add_argument("--checkpoint-every", type=int, default=None, help="steps between checkpoints")
    g.add_argument("--sample-every", type=int, default=None, help="steps between sample grids (0 = off)")
    g.add_argument("--eval-every", type=int, default=None, help="steps between metric evaluations (0 = off)")
    g.add_argument(
        "--check-every",
        type=int,
        default=None,
        help="steps between quick quality checks; default: about 10 a run, fewer where they would take over 2%% of the "
        "training time; 0: off",
    )
    g.add_argument("--tensorboard", action="store_true", default=None, help="also write TensorBoard events to RUN/tb")
    g.add_argument("--watch", action="store_true", help="rewrite RUN/report.html at every sample step (open it)")
    g.add_argument("--sync-bn", action="store_true", default=None, help="torchrun: SyncBatchNorm across processes")
    add_watermark_args(g)  # the sample grids' watermark; the key never goes into the run directory
    p.set_defaults(func=run)


def resolve_config(args: argparse.Namespace) -> TrainConfig:
    """Preset (or the run's own config.json when resuming), then the flags given."""
    from ganforge import rundir

    base = get_preset(args.preset or "seed")
    out = args.out or base.out_dir
    if args.resume_from and not args.out:  # a checkpoint of a run continues that run
        owner = Path(args.resume_from).parent.parent
        if (owner / rundir.CONFIG_FILE).is_file():
            out = str(owner)
    if (args.resume or args.resume_from) and (Path(out) / rundir.CONFIG_FILE).is_file():
        base = rundir.read_config(out)[0]
    elif args.resume_from:  # a new run (a branch) from another run's checkpoint: that checkpoint's config
        from ganforge.checkpoint import checkpoint_config

        base = checkpoint_config(args.resume_from)
    changes: dict[str, Any] = {k: getattr(args, k) for k in _OVERRIDES if getattr(args, k) is not None}
    changes.update({k: True for k in _SWITCHES if getattr(args, k)})
    if args.betas is not None:
        changes["beta1"], changes["beta2"] = args.betas
    if args.no_ema_rampup:
        changes["ema_rampup"] = False
    model = {k: getattr(args, k) for k in _MODEL_OVERRIDES if getattr(args, k) is not None}
    model.update({k: True for k in _MODEL_SWITCHES if getattr(args, k)})
    if args.data and args.data.partition(":")[0] in ("folder", "zip", "packed") and not args.resume:
        model = {**_native_shape(args.data, base, model), **model}
    if model:
        changes["model"] = dataclasses.replace(base.model, **model)
    if model.get("num_classes") == 0 and args.class_balance is None:
        changes["class_balance"] = 0.0  # a preset's class balance does not carry over to an unconditional model
    return dataclasses.replace(base, out_dir=out, **changes)


def _native_shape(spec: str, base: TrainConfig, given: dict[str, Any]) -> dict[str, Any]:
    """A folder's, zip's or pack's own channels (and, for the conv archs, its size) unless --channels /
    --image-size say otherwise."""
    from ganforge.data.pack import native_shape

    channels, size = native_shape(spec)
    found: dict[str, Any] = {"channels": channels}
    if given.get("arch", base.model.arch) != "mlp" and size in CONV_SIZES:
        found["image_size"] = size
    return found


def run(args: argparse.Namespace) -> int:
    from ganforge.distributed import env_rank
    from ganforge.train import train

    cfg = resolve_config(args)
    if args.dry_run:
        print(cfg.to_json())
        return 0
    result = train(
        cfg,
        resume=args.resume,
        resume_from=args.resume_from,
        on_step=_progress(cfg) if is_terminal() and env_rank() == 0 else None,
        watch=args.watch,
        watermark=watermark_setting(args) if env_rank() == 0 else False,  # rank 0 alone writes the grids
    )
    if env_rank() == 0:
        print(summary(result, cfg))
    return 130 if result.interrupted else 0


def _progress(cfg: TrainConfig) -> Any:
    """A tqdm bar with ETA and the latest losses; log lines are quieted while it shows."""
    from tqdm import tqdm

    logging.getLogger("ganforge.train").setLevel(logging.WARNING)
    bar = tqdm(total=cfg.steps, unit="step", dynamic_ncols=True, leave=True)
    figures: dict[str, str] = {}  # the latest quick-check figures, kept on the bar between checks

    def on_step(step: int, logged: dict[str, float] | None) -> None:
        bar.update(step - bar.n)
        if logged:
            if "classes_covered" in logged:
                figures["classes"] = f"{logged['classes_covered']:.0f}/{logged['num_classes']:.0f}"
            elif "modes_covered" in logged and "num_modes" in logged:
                figures["modes"] = f"{logged['modes_covered']:.0f}/{logged['num_modes']:.0f}"
            bar.set_postfix(loss_d=f"{logged['loss_d']:.3f}", loss_g=f"{logged['loss_g']:.3f}",
                            img_s=f"{logged['img_per_s']:.0f}", **figures)  # fmt: skip
        if step >= cfg.steps:
            bar.close()

    return on_step


def summary(result: RunResult, cfg: TrainConfig) -> str:
    """The few lines printed at the end of a run."""
    losses = "  ".join(f"{k} {v:.4f}" for k, v in result.final.items() if k in ("loss_d", "loss_g"))
    lines = [
        f"{'stopped' if result.interrupted else 'done'}: {result.run_dir}  step {result.step}/{cfg.steps}",
        f"  trained {result.steps_trained} steps in {result.seconds:.1f} s: {result.train_seconds:.1f} s of steps "
        f"({result.img_per_s:.0f} img/s), {max(result.seconds - result.train_seconds, 0):.1f} s of checks, grids, "
        "checkpoints and the report",
    ]
    if losses:
        lines.append(f"  final {losses}")
    if result.summary:
        lines.append(f"  quality:   {result.summary}")
    lines.append(f"  generator: {result.generator_path}")
    if result.samples_path:
        lines.append(f"  samples:   {result.samples_path}")
    if (result.run_dir / "report.html").is_file():
        lines.append(f"  report:    {result.run_dir / 'report.html'}")
    if result.interrupted:
        lines.append(f"  continue:  ganforge train --out {result.run_dir} --resume")
    return "\n".join(lines)
