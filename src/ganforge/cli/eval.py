"""`ganforge eval`: offline metrics for a generator or a folder of images; prints a table, writes eval.json."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ganforge.cli.common import add_device_arg, add_max_n_arg, check_n, progress_bars
from ganforge.errors import ConfigError

# ganforge.metrics.EXTRACTORS, written out so that `--help` needs no torch (a test keeps them equal).
EXTRACTOR_NAMES = ("mnist", "fashion-mnist", "emoji", "inception")

DESCRIPTION = """Score a generator (a run directory or a generator.safetensors file) or a folder of images
with ganforge's offline metrics: FID and KID on a shipped feature extractor, precision/recall,
density/coverage, a classifier score and mode coverage, against the data set's reference split.
A run directory gets RUN/eval.json; for a bare generator file or a folder, the table is printed
and JSON is written only with --json.

  ganforge eval runs/dcgan                 # 10,000 samples; writes runs/dcgan/eval.json
  ganforge eval --images out/ --data mnist --json out.json
  ganforge eval runs/stacked --data-dir DIR  # stacked-mnist: also modes of 1,000 digit triples, 26,000 samples
  ganforge eval runs/emoji                 # colour: the emoji extractor, against the 367 test-split emoji
  ganforge eval runs/dcgan --extractor inception --inception-weights pt_inception-2015-12-05-6726825d.pth

--extractor inception scores FID, KID, the Inception Score (IS) and precision/recall on the FID
Inception network (the 2015-12-05 TensorFlow graph), with the weights file that torch-fidelity
(weights-inception-2015-12-05-6726825d.pth) or pytorch-fid (pt_inception-2015-12-05-6726825d.pth)
users have; ganforge never downloads it. Set GANFORGE_INCEPTION_WEIGHTS once instead of the flag.
Images are quantised to uint8 and resized as torch-fidelity does, so its figures are ganforge's.
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
    parser.add_argument(
        "--n", type=int, default=None, help="number of samples (default 10000; 26000 for stacked-mnist, as published)"
    )
    add_max_n_arg(parser)
    parser.add_argument(
        "--json", metavar="FILE", help="where to write the result (default: RUN/eval.json for a run directory)"
    )
    parser.add_argument(
        "--data", metavar="SPEC", help="data spec of the reference (default: the generator's, else mnist)"
    )
    parser.add_argument("--data-dir", metavar="DIR", help="where the data set's files are")
    parser.add_argument(
        "--reference-split",
        choices=("test", "train"),
        default="test",
        help="score against the data's test split (default: images never trained on) or its training split",
    )
    parser.add_argument(
        "--extractor", metavar="NAME", help=f"feature extractor: {', '.join(EXTRACTOR_NAMES)} (default: by data)"
    )
    parser.add_argument(
        "--inception-weights",
        metavar="FILE",
        help="the FID Inception weights file (torch-fidelity's or pytorch-fid's); implies --extractor inception "
        "(default: $GANFORGE_INCEPTION_WEIGHTS)",
    )
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    parser.add_argument("--batch-size", type=int, default=500, help="batch size for sampling and features")
    add_device_arg(parser)
    parser.set_defaults(func=run)


def json_target(args: argparse.Namespace) -> Path | None:
    """Where the result goes: --json, else RUN/eval.json for a run directory, else nowhere (print only)."""
    if args.json is not None:
        path = Path(args.json)
        if not args.json.strip() or args.json.endswith(("/", "\\")) or path.is_dir():
            raise ConfigError(f"--json {args.json!r} is a folder; pass a file name such as {path / 'eval.json'}")
        if path.exists() and not path.is_file():
            raise ConfigError(f"--json {args.json} is not a regular file; pass a file name")
        return path
    if args.run is not None and Path(args.run).is_dir():
        return Path(args.run) / "eval.json"
    return None


def run(args: argparse.Namespace) -> int:
    # 1. Every check that needs no model or data, before the (long) evaluation.
    if (args.run is None) == (args.images is None):
        raise ConfigError("pass a run directory or generator file, or --images DIR (one of them)")
    if args.n is not None:
        check_n(args.n, args.max_n)
    if args.batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1; got {args.batch_size}")
    if args.images is not None and not Path(args.images).is_dir():
        raise ConfigError(f"--images {args.images} is not a folder; pass a folder of image files")
    if args.inception_weights is not None:
        if args.extractor not in (None, "inception"):
            raise ConfigError(f"--inception-weights is for --extractor inception; got --extractor {args.extractor}")
        if not Path(args.inception_weights).expanduser().is_file():
            raise ConfigError(
                f"--inception-weights {args.inception_weights} is not a file; pass torch-fidelity's "
                "weights-inception-2015-12-05-6726825d.pth or pytorch-fid's pt_inception-2015-12-05-6726825d.pth"
            )
    json_path = json_target(args)

    from ganforge.checkpoint import load_generator
    from ganforge.device import resolve_device
    from ganforge.io import write_text_atomic
    from ganforge.metrics import evaluate, format_table

    # 2. The evaluation, with progress bars on a terminal.
    device = resolve_device(args.device)
    common = dict(
        data_dir=args.data_dir, reference_split=args.reference_split, n=args.n, extractor=args.extractor,
        seed=args.seed, batch_size=args.batch_size,
        inception_weights=args.inception_weights, device=device, on_progress=progress_bars(),
    )  # fmt: skip
    if args.run is not None:
        generator = load_generator(args.run, device=device)
        result = evaluate(generator, data=args.data, **common)
    else:
        result = evaluate(images=args.images, data=args.data or "mnist", **common)
    print(format_table(result))
    if json_path is not None:
        write_text_atomic(json_path, json.dumps(result, indent=2) + "\n")
        print(f"wrote {json_path}")
        run_dir = Path(args.run) if args.run is not None else None
        if run_dir is not None and json_path == run_dir / "eval.json" and (run_dir / "config.json").is_file():
            from ganforge.model_card import refresh  # a training run's folder: its card shows the new numbers

            if (card := refresh(args.run)) is not None:
                print(f"wrote {card}")
    return 0
