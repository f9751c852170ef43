"""Options and helpers shared by the subcommands."""

from __future__ import annotations

import argparse
import sys


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default=None, help="auto picks CUDA when present (default)"
    )


def is_terminal() -> bool:
    return sys.stderr.isatty()
