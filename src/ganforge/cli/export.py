"""`ganforge export`: a generator as ONNX or TorchScript, for other runtimes, with its provenance in the file."""

from __future__ import annotations

import argparse

from ganforge.errors import ConfigError

FORMATS = ("onnx", "torchscript")  # ganforge.export.FORMATS, written out so that `--help` needs no torch

DESCRIPTION = """Write the generator of a run directory (or a generator.safetensors file) as ONNX (opset 18)
or TorchScript: the EMA generator where training kept one, in eval mode. Inputs: `z`, float32
(B, z_dim) N(0, 1) latents, and for a conditional model `class`, int64 (B,); output `images`,
float32 (B, C, H, W) in [-1, 1]. The generator file's sha256, model config and provenance go into
the file's metadata (ONNX metadata_props; TorchScript extra file ganforge.json).

  ganforge export runs/mnist --format onnx --out mnist.onnx               # any batch size
  ganforge export runs/mnist --format onnx --out mnist-b64.onnx --batch 64
  ganforge export runs/mnist --format torchscript --out mnist.pt
"""


def _batch(text: str) -> int | None:
    if text == "dynamic":
        return None
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--batch must be a positive number or 'dynamic'; got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"--batch must be a positive number or 'dynamic'; got {value}")
    return value


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "export",
        help="write a generator as ONNX or TorchScript",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("generator", metavar="RUN_OR_FILE", help="a run directory or a generator file")
    parser.add_argument("--format", required=True, choices=FORMATS, help="onnx or torchscript")
    parser.add_argument("--out", required=True, metavar="FILE", help="the file to write (replaced atomically)")
    parser.add_argument(
        "--batch", type=_batch, default=None, metavar="N|dynamic", help="ONNX input batch size (default: dynamic)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if not args.out.strip() or args.out.endswith(("/", "\\")):
        raise ConfigError(f"--out {args.out!r} is a folder; pass a file name such as generator.{args.format}")
    from ganforge.export import export_generator

    path = export_generator(args.generator, args.out, fmt=args.format, batch=args.batch)
    print(f"wrote {path} ({args.format}, batch {args.batch or 'dynamic'})")
    return 0
