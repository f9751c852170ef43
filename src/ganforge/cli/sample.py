"""`ganforge sample`: images from a generator file alone (no dataset, no training code)."""

from __future__ import annotations

import argparse

from ganforge.cli.common import (
    add_device_arg,
    add_max_n_arg,
    add_watermark_args,
    check_n,
    check_seed,
    watermark_setting,
)
from ganforge.errors import ConfigError

DESCRIPTION = """Write a grid (PNG, or JPEG for FILE.jpg), or single PNGs with --out DIR/, from a run
directory or generator file. Every image carries its provenance (PNG text chunks; for JPEG, JSON
in the comment segment): the generator's sha256, seed, index, truncation and class, enough to
draw it again. Every image also carries the IPTC digital source type "trainedAlgorithmicMedia" in
XMP, and an invisible watermark (keyed; payload: the generator's sha256) unless --no-watermark.
For a 2-D (toy) model, writes a scatter plot of the points over the data's modes (not watermarked).

  ganforge sample runs/seed --n 25 --seed 7 --out grid.png
  ganforge sample runs/cgan --per-class --out classes.png   # one row per class
  ganforge sample runs/cgan --latents proj/latents.npy --out again.png   # what `ganforge project` found
  ganforge sample runs/cgan --latents proj/latents.npy --interpolate 8 --out path.png  # latent to latent

With --latents, the latents come from the file (N, z_dim) instead of a seed, and for a conditional
generator their classes from classes.npy beside it (or --class K for all).
"""

GRID_N = 25  # default --n: a 5x5 grid
PER_CLASS_N = 10  # default --n with --per-class: images a class (a row)
POINTS_N = 2_500  # default --n for a 2-D model: the sample count of PacGAN's toy benchmark


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="write samples from a generator",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("generator", metavar="RUN_OR_FILE", help="run directory, generator.safetensors or pretrained:NAME")
    p.add_argument(
        "--n",
        type=int,
        default=None,
        help=f"number of images (default {GRID_N}; with --per-class, images a class, default {PER_CLASS_N}; "
        f"points of a 2-D model, default {POINTS_N})",
    )
    add_max_n_arg(p)
    p.add_argument(
        "--out",
        default=None,
        help="FILE.png (or .jpg) for a grid, DIR/ for single PNGs (default: sample_seed<SEED>.png in the current "
        "folder, with -2, -3, ... added rather than overwrite a file)",
    )
    p.add_argument("--seed", type=int, default=0, help="the same seed gives the same images")
    p.add_argument("--truncation", type=float, default=1.0, help="latent scale psi in (0, 1]")
    p.add_argument("--class", dest="label", type=int, default=None, help="class for a conditional generator")
    p.add_argument(
        "--per-class", action="store_true", help="a grid with one row for each class of a conditional generator"
    )
    p.add_argument("--nrow", type=int, default=None, help="images a row in the grid (default: square)")
    p.add_argument("--latents", metavar="FILE", help="render these latents (.npy, as `ganforge project` writes)")
    p.add_argument(
        "--interpolate",
        type=int,
        metavar="STEPS",
        help="with --latents: STEPS frames from each latent to the next (slerp), one grid row a pair",
    )
    add_watermark_args(p)
    c = p.add_argument_group("C2PA content credentials (needs the c2pa extra: pip install 'ganforge[c2pa]')")
    c.add_argument("--c2pa-cert", metavar="CHAIN.pem", help="sign a C2PA manifest with this certificate chain")
    c.add_argument("--c2pa-key", metavar="KEY.pem", help="the chain's private key (PEM)")
    c.add_argument("--c2pa-alg", default="es256", help="signature algorithm of the key (default es256)")
    add_device_arg(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    # 1. Check what needs no model, before loading torch and the file.
    if args.n is not None:
        check_n(args.n, args.max_n)
    if args.nrow is not None and args.nrow < 1:
        raise ConfigError(f"--nrow (images a row) must be at least 1; got {args.nrow}")
    if args.per_class and args.label is not None:
        raise ConfigError("--per-class draws every class; drop --class")
    check_seed(args.seed)
    if not 0 < args.truncation <= 1:
        raise ConfigError(f"truncation must be in (0, 1]; got {args.truncation}")
    is_signed = bool(args.c2pa_cert or args.c2pa_key)
    if is_signed:
        if not (args.c2pa_cert and args.c2pa_key):
            raise ConfigError("C2PA signing needs both --c2pa-cert CHAIN.pem and --c2pa-key KEY.pem")
        from ganforge.credentials import check_signer

        check_signer(cert_chain=args.c2pa_cert, private_key=args.c2pa_key, alg=args.c2pa_alg)
    from ganforge.sample import check_out, default_out, refuse_run_files, save_samples

    if args.out is None:
        args.out = default_out(args.seed)
    check_out(args.out)  # the file types any model writes; a 2-D model's narrower set is checked once it is loaded
    refuse_run_files(args.out)
    if args.latents is not None:
        return _run_latents(args)
    if args.interpolate is not None:
        raise ConfigError("--interpolate goes between the latents of a file: pass --latents FILE too")

    from ganforge.checkpoint import load_generator
    from ganforge.device import resolve_device
    from ganforge.images import is_points

    # 2. Load G; then the checks that depend on it (a 2-D model, its classes).
    G = load_generator(args.generator, device=resolve_device(args.device))
    points = is_points(G.cfg.shape)
    check_out(args.out, points=points)
    n = args.n if args.n is not None else POINTS_N if points else PER_CLASS_N if args.per_class else GRID_N
    total = n * max(1, G.cfg.num_classes) if args.per_class else n
    if total > args.max_n:
        raise ConfigError(
            f"--per-class --n {n} draws {total:,} images ({G.cfg.num_classes} classes), over the maximum of "
            f"{args.max_n:,}; pass a smaller --n, or --max-n {total}"
        )
    paths = save_samples(
        G, args.out, n, seed=args.seed, truncation=args.truncation, labels=args.label, nrow=args.nrow,
        per_class=args.per_class, watermark=watermark_setting(args),
    )  # fmt: skip
    if is_signed:
        from ganforge.credentials import sign_file

        for path in paths:
            sign_file(path, cert_chain=args.c2pa_cert, private_key=args.c2pa_key, generator_sha256=G.sha256,
                      alg=args.c2pa_alg)  # fmt: skip
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
    what = f"{n} points" if points else f"{n} samples a class" if args.per_class else f"{n} samples"
    print(f"wrote {what} (seed {args.seed}) to {where}")
    return 0


def _run_latents(args: argparse.Namespace) -> int:
    """`--latents FILE`: render (or interpolate between) given latents instead of a seed's."""
    if args.per_class or args.n is not None:
        raise ConfigError("--latents renders the file's latents; drop --n and --per-class")
    if args.interpolate is not None and args.interpolate < 2:
        raise ConfigError(
            f"--interpolate must be at least 2 (frames from one latent to the next); got {args.interpolate}"
        )

    from pathlib import Path

    from ganforge.checkpoint import load_generator
    from ganforge.device import resolve_device
    from ganforge.sample import check_out, load_latents, save_latent_images

    check_out(args.out)
    G = load_generator(args.generator, device=resolve_device(args.device))
    z, labels = load_latents(args.latents, G, args.label)
    paths = save_latent_images(
        G, args.out, z, labels, steps=args.interpolate, source=Path(args.latents).name, nrow=args.nrow,
        watermark=watermark_setting(args),
    )  # fmt: skip
    where = paths[0] if len(paths) == 1 else f"{len(paths)} files in {paths[0].parent}"
    what = f"paths between {len(z)} latents" if args.interpolate else f"{len(z)} latents"
    print(f"wrote {what} from {args.latents} to {where}")
    return 0
