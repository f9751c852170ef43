"""`ganforge sample`: images from a generator file alone (no dataset, no training code)."""

from __future__ import annotations

import argparse

from ganforge.checkpoint import load_generator
from ganforge.cli.common import add_device_arg
from ganforge.device import resolve_device
from ganforge.sample import save_samples


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write samples from a generator",
        description="Write a grid PNG (or single PNGs with --out DIR/) from a run directory or generator file.",
    )
    p.add_argument("generator", metavar="RUN_OR_FILE", help="run directory or generator.safetensors")
    p.add_argument("--n", type=int, default=25, help="number of images (default 25)")
    p.add_argument("--out", default="samples.png", help="FILE.png for a grid, DIR/ for single images")
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same images")
    p.add_argument("--truncation", type=float, default=1.0, help="latent scale psi in (0, 1]")
    p.add_argument("--class", dest="label", type=int, default=None, help="class for a conditional generator")
    p.add_argument("--nrow", type=int, default=None, help="images a row in the grid (default: square)")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    G = load_generator(args.generator, device=resolve_device(args.device))
    paths = save_samples(
        G, args.out, args.n, seed=args.seed, truncation=args.truncation, labels=args.label, nrow=args.nrow
    )
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
    print(f"wrote {args.n} samples (seed {args.seed}) to {where}")
    return 0
