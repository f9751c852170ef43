"""`ganforge detector train`: train a passive detector (real data against samples of runs) into one file."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from ganforge.errors import ConfigError

DESCRIPTION = """Train a passive detector: a small CNN that scores an image real (0) or generated (1), for
`ganforge detect --detector FILE`. Real images come from a data spec; fake ones are samples of each --fake
run's generator file and of every checkpoint the run keeps (several qualities of one model). Both classes
are shifted by up to 2 pixels and half of them re-encoded as JPEG (quality 40-95) while training, and the
verdict's threshold is set on held-out real images. Inputs are grey 28x28 (others are converted).

  ganforge detector train --real mnist-sample --fake runs/seed runs/dcgan --out my-detector.safetensors
"""

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("detector", help="train a passive detector of generated images", description=(
        "Passive detectors of generated images (no key needed)."))  # fmt: skip
    sub = parser.add_subparsers(dest="detector_command", metavar="COMMAND", parser_class=type(parser))
    train = sub.add_parser(
        "train", help="train a detector: real data against runs' samples", description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    train.add_argument("--real", required=True, metavar="SPEC", help="data spec of the real images, e.g. mnist-sample")
    train.add_argument("--data-dir", metavar="DIR", help="where the real data set's files are")
    train.add_argument("--fake", required=True, nargs="+", metavar="RUN",
                       help="run folders (their generator, checkpoints), generator files or checkpoints")  # fmt: skip
    train.add_argument("--out", required=True, metavar="FILE", help="the detector file to write (.safetensors)")
    train.add_argument("--steps", type=int, default=3_000, help="training steps of 128 images (default 3000)")
    train.add_argument("--n-fake", type=int, default=20_000, help="fake images drawn in all (default 20000)")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--no-checkpoints", action="store_true", help="use only each run's final generator file")
    train.set_defaults(func=run_train)
    parser.set_defaults(func=lambda args: parser.print_help() or 2)


def run_train(args: argparse.Namespace) -> int:
    if args.steps < 1:
        raise ConfigError(f"--steps must be at least 1; got {args.steps}")
    if args.n_fake < 20:
        raise ConfigError(f"--n-fake must be at least 20; got {args.n_fake}")
    out = Path(args.out)
    if out.is_dir() or args.out.endswith("/"):
        raise ConfigError(f"--out {args.out} is a folder; pass a file name such as {out / 'detector.safetensors'}")

    import numpy as np

    from ganforge.data import load_dataset
    from ganforge.detector import grey_28
    from ganforge.detector_train import fake_sources, train_and_save

    # 1. Real images as grey 28x28 uint8 (converted when the data set is another size or colour).
    ds = load_dataset(args.real, split="train", data_dir=args.data_dir)
    if ds.images.dtype.is_floating_point or ds.images.dim() != 4:
        raise ConfigError(f"--real {args.real} holds points, not images; pass an image data set")
    pixels = ds.images.permute(0, 2, 3, 1).numpy()
    real = np.stack([grey_28(p) for p in pixels])
    sources = fake_sources(args.fake, checkpoints=not args.no_checkpoints)
    print(f"real: {len(real):,} images of {args.real}; fake: {len(sources)} generators, "
          f"{max(1, args.n_fake // len(sources)):,} samples each")  # fmt: skip

    # 2. Train, logging the loss now and then.
    every = max(1, args.steps // 10)

    def on_step(step: int, loss: float) -> None:
        if step % every == 0 or step == args.steps:
            print(f"step {step}  loss {loss:.4f}", flush=True)

    trained, digest = train_and_save(real, args.real, sources, out, n_fake=args.n_fake, steps=args.steps,
                                     seed=args.seed, on_step=on_step)  # fmt: skip
    p = trained.protocol
    print(f"held-out: ROC-AUC {p['heldout_auc']:.4f}, real flagged {p['heldout_real_flagged']:.2%}, "
          f"fake flagged {p['heldout_fake_flagged']:.2%} at threshold {trained.threshold:.4f}")  # fmt: skip
    print(f"wrote {out} (sha256 {digest})")
    return 0
