"""Options and helpers shared by the subcommands; nothing here imports torch."""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable
from typing import Any

from ganforge.errors import ConfigError

# The most samples `sample` and `eval` draw unless told otherwise: 100,000 28x28 images are about
# 300 MB of floats and a few CPU minutes; ten times that ran out of memory on a 16 GB machine.
MAX_N = 100_000
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")


def device_name(text: str) -> str:
    """argparse type for --device: auto, cpu, cuda or cuda:N (checked against the machine later)."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"unknown device {text!r}; use auto, cpu, cuda or cuda:N")
    return text


def add_device_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--device",
        type=device_name,
        default=None,
        metavar="DEVICE",
        help="auto (default: CUDA when present), cpu, cuda or cuda:N",
    )


def add_max_n_arg(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--max-n",
        type=int,
        default=MAX_N,
        metavar="N",
        help=f"refuse --n above this (default {MAX_N:,}); raise it when you mean to draw more",
    )


def check_n(n: int, max_n: int, what: str = "--n") -> None:
    """Refuse a sample count that is not positive or is over the cap, before any work starts."""
    if n < 1:
        raise ConfigError(f"{what} must be at least 1; got {n}")
    if n > max_n:
        raise ConfigError(f"{what} {n:,} is over the maximum of {max_n:,}; pass a smaller {what}, or --max-n {n}")


def is_terminal() -> bool:
    return sys.stderr.isatty()


def progress_bars(*, delay_s: float = 2.0) -> Callable[[str, int, int], None] | None:
    """An `on_progress(stage, done, total)` callback drawing one tqdm bar a stage on stderr.

    Only on a terminal, and a bar shows only once its stage has run for `delay_s`: short work stays quiet.
    """
    if not is_terminal():
        return None
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def on_progress(stage: str, done: int, total: int) -> None:
        bar = bars.get(stage)
        if bar is None:
            bar = bars[stage] = tqdm(total=total, desc=stage, unit="img", delay=delay_s, leave=False, file=sys.stderr)
        bar.update(done - bar.n)
        if done >= total:
            bar.close()

    return on_progress


def check_seed(seed: int) -> None:
    """A seed the random generators take: 0 to 2**32 - 1."""
    from ganforge.config import MAX_SEED

    if not 0 <= seed < MAX_SEED:
        raise ConfigError(f"--seed must be an integer from 0 to {MAX_SEED - 1:,}; got {seed}")


def add_watermark_args(parser: argparse.ArgumentParser) -> None:
    """--key-file and --no-watermark: every image is marked by default (see docs/responsible-use.md)."""
    parser.add_argument(
        "--key-file",
        default=None,
        help="watermark key (made by `ganforge key new`); default: $GANFORGE_KEY_FILE, else the per-user key "
        "($GANFORGE_HOME or ~/.cache/ganforge, watermark.key), made on first use",
    )
    parser.add_argument("--no-watermark", action="store_true", help="do not mark the images (their provenance says so)")


def watermark_setting(args: argparse.Namespace) -> bool | bytes:
    """False with --no-watermark, the key in --key-file (read now, so a bad file fails early), else True.

    True leaves the key to the library: $GANFORGE_KEY_FILE, else the per-user key, made (with one log
    line saying where) only when the first image is marked.
    """
    if args.no_watermark:
        if args.key_file:
            raise ConfigError("--no-watermark and --key-file contradict each other; pass one of them")
        return False
    if args.key_file:
        from ganforge.watermark_keys import read_key

        return read_key(args.key_file)
    return True
