"""`ganforge eval`: offline metrics for a generator or a folder of images; prints a table, writes eval.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganforge.checkpoint import load_generator, resolve_generator_path
from ganforge.cli.common import add_device_arg
from ganforge.device import resolve_device
from ganforge.errors import ConfigError
from ganforge.io import write_text_atomic
from ganforge.metrics import EXTRACTORS, evaluate, format_table

DESCRIPTION = """Score a generator (a run directory or a generator.safetensors file) or a folder of images
with ganforge's offline metrics: FID and KID on a shipped feature extractor, precision/recall,
density/coverage, a classifier score and mode coverage, against the data set's reference split.

  ganforge eval runs/dcgan                 # 10,000 samples; writes runs/dcgan/eval.json
  ganforge eval --images out/ --data mnist --json out.json
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="score a generator or a folder of images (FID, KID, precision/recall, ...)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("run", nargs="?", metavar="RUN_OR_FILE", help="a run directory or a generator file")
    parser.add_argument("--images", metavar="DIR", help="score this folder of images instead of a generator")
    parser.add_argument("--n", type=int, default=10_000, help="number of samples (default 10000)")
    parser.add_argument("--json", metavar="FILE", help="where to write the result (default: RUN/eval.json)")
    parser.add_argument(
        "--data", metavar="SPEC", help="data spec of the reference (default: the generator's, else mnist)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the data set's files are")
    parser.add_argument(
        "--extractor", metavar="NAME", help=f"feature extractor: {', '.join(EXTRACTORS)} (default: by data)"
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=500, help="batch size for sampling and features")
    add_device_arg(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if (args.run is None) == (args.images is None):
        raise ConfigError("pass a run directory or generator file, or --images DIR (one of them)")
    device = resolve_device(args.device)
    json_path = Path(args.json) if args.json else None
    common = dict(
        data_dir=args.data_dir, n=args.n, extractor=args.extractor, seed=args.seed, batch_size=args.batch_size,
        device=device,
    )  # fmt: skip
    if args.run is not None:
        generator = load_generator(args.run, device=device)
        if json_path is None:
            json_path = resolve_generator_path(args.run).parent / "eval.json"
        result = evaluate(generator, data=args.data, **common)
    else:
        if not Path(args.images).is_dir():
            raise ConfigError(f"--images {args.images} is not a folder; pass a folder of image files")
        result = evaluate(images=args.images, data=args.data or "mnist", **common)
    print(format_table(result))
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path}")
    return 0
