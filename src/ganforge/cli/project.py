"""`ganforge project`: find the latents (and classes) whose generated images are closest to given real images."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganforge.cli.common import add_device_arg, add_watermark_args, progress_bars, watermark_setting
from ganforge.errors import ConfigError

DEFAULT_STEPS = 200  # ganforge.project.DEFAULT_STEPS, written out so that `--help` needs no torch
DEFAULT_STARTS = 4

DESCRIPTION = f"""Project real images into a generator's latent space: for each image, Adam searches the
latent z (and, for a conditional generator, the class) whose generated image is closest to it, by
pixel distance plus, for 28x28 grey models, the distance of the shipped extractor's features (other
models: pixel distance alone). Inputs are converted to the model's size and channels.

Writes into --out: latents.npy ((N, z_dim) float32, one row an input, in the order given),
classes.npy ((N,) int64, conditional generators only), NAME_projected.png for each input NAME.png,
projection.png (each input beside its reconstruction) and projection.json (the distances).

  ganforge project runs/mnist-hq digit.png --out proj/
  ganforge sample runs/mnist-hq --latents proj/latents.npy --out again.png
  ganforge sample runs/mnist-hq --latents proj/latents.npy --interpolate 8 --out path.png

{DEFAULT_STARTS} random starts an image (and the extractor's two likeliest classes) run together for the
first quarter of the steps; the best one is refined for the rest. The same --seed gives the same result.
"""

SUFFIX = "_projected.png"
GRID_FILE = "projection.png"
REPORT_FILE = "projection.json"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "project",
        help="find the latents of real images (projection)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("generator", metavar="RUN_OR_FILE", help="run directory, generator.safetensors or pretrained:NAME")
    p.add_argument("images", metavar="IMAGE", nargs="+", help="image files (PNG, JPEG, WebP, ...)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder for the latents and images")
    p.add_argument("--steps", type=int, default=DEFAULT_STEPS, help=f"Adam steps (default {DEFAULT_STEPS})")
    p.add_argument("--starts", type=int, default=DEFAULT_STARTS, help=f"random starts an image ({DEFAULT_STARTS})")
    p.add_argument("--class", dest="label", type=int, default=None, help="fix the class of a conditional generator")
    p.add_argument("--seed", type=int, default=0, help="seed of the random starts (default 0)")
    add_watermark_args(p)
    add_device_arg(p)
    p.set_defaults(func=run)


def output_names(images: list[str]) -> list[str]:
    """NAME.png -> NAME_projected.png for each input; refuses two inputs that would write the same file."""
    names = [Path(image).stem + SUFFIX for image in images]
    seen: dict[str, str] = {}
    for image, name in zip(images, names, strict=True):
        if name in seen and seen[name] != image:
            raise ConfigError(f"{seen[name]} and {image} would both write {name}; rename one, or project them apart")
        seen[name] = image
    return names


def run(args: argparse.Namespace) -> int:
    # 1. Check what needs no model.
    if args.steps < 4 or args.starts < 1:
        raise ConfigError(f"--steps must be at least 4 and --starts at least 1; got {args.steps} and {args.starts}")
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file; pass a folder (it is made when missing)")
    names = output_names(args.images)

    import numpy as np

    from ganforge.checkpoint import load_generator
    from ganforge.device import resolve_device
    from ganforge.images import make_grid, provenance, save_image, to_uint8
    from ganforge.io import atomic_path, write_text_atomic
    from ganforge.marking import FROM_GENERATOR, make_marker
    from ganforge.project import project, read_images
    from ganforge.sample import CLASSES_FILE, LATENTS_FILE

    # 2. Load G and every input before anything is written: a bad image leaves no half-made folder.
    G = load_generator(args.generator, device=resolve_device(args.device))
    targets = read_images(args.images, G.cfg.shape)
    bars = progress_bars()
    on_step = None if bars is None else (lambda done, total: bars("projecting", done, total))
    result = project(G, targets, steps=args.steps, starts=args.starts, label=args.label, seed=args.seed,
                     on_step=on_step)  # fmt: skip

    # 3. Write the latents, the reconstructions, the before/after grid and the distances.
    with atomic_path(out / LATENTS_FILE) as tmp, open(tmp, "wb") as f:
        np.save(f, result.z.numpy().astype(np.float32))
    if result.labels is not None:
        with atomic_path(out / CLASSES_FILE) as tmp, open(tmp, "wb") as f:
            np.save(f, result.labels.numpy().astype(np.int64))
    rows = []
    # Reconstructions are generated images: marked as `ganforge sample` marks them. The inputs are not.
    marker = make_marker(watermark_setting(args), G.sha256, FROM_GENERATOR)
    marked = marker.apply(to_uint8(result.images))
    mark_text = marker.text(*marked.shape[1:3])
    for i, (image, name, pixels) in enumerate(zip(args.images, names, marked, strict=True)):
        label = None if result.labels is None else int(result.labels[i])
        extra = {"ganforge:latents": f"{LATENTS_FILE} row {i}", "ganforge:projected_from": Path(image).name}
        extra |= mark_text
        save_image(pixels, out / name, provenance(generator_sha256=G.sha256, index=i, label=label, extra=extra))
        cosine = None if result.feature_cosine is None else round(float(result.feature_cosine[i]), 4)
        rows.append({"input": image, "output": name, "class": label, "pixel_mse": round(float(result.pixel_mse[i]), 5),
                     "feature_cosine": cosine})  # fmt: skip
    inputs = to_uint8(result.targets)
    pairs = np.stack([inputs, marked], axis=1).reshape(-1, *inputs.shape[1:])  # input, reconstruction, input, ...
    nrow = 2 * min(len(names), 8)
    grid_text = provenance(generator_sha256=G.sha256, nrow=nrow, extra={"ganforge:layout": "input, reconstruction"})
    save_image(make_grid(pairs, nrow=nrow), out / GRID_FILE, grid_text)
    report = {
        "generator": str(args.generator), "generator_sha256": G.sha256, "steps": args.steps, "starts": args.starts,
        "seed": args.seed, "class": args.label, "extractor": result.extractor,
        "distance": "pixel MSE" + (f" + (1 - cosine of {result.extractor} features)" if result.extractor else ""),
        "images": rows,
    }  # fmt: skip
    write_text_atomic(out / REPORT_FILE, json.dumps(report, indent=2) + "\n")
    print(f"projected {len(names)} image(s) into {out}: {LATENTS_FILE}, {GRID_FILE}, {REPORT_FILE} and *{SUFFIX}")
    for row in rows:
        parts = [f"class {row['class']}"] if row["class"] is not None else []
        parts.append(f"pixel MSE {row['pixel_mse']:.4f}")
        if row["feature_cosine"] is not None:
            parts.append(f"feature cosine {row['feature_cosine']:.3f}")
        print(f"  {row['input']}: {', '.join(parts)}")
    return 0
