"""The `ganforge` command: a thin shell over the library, one module a subcommand."""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from ganforge.errors import GanforgeError
from ganforge.version import __version__

# Each module defines register(subparsers) and sets `func` (args -> exit code) on its parser. They
# import torch (and anything else heavy) inside `func`, so that `--help` and `--version` stay fast.
# A new subcommand is one more module and one more name here.
SUBCOMMANDS = (
    "train",
    "sample",
    "eval",
    "serve",
    "data",
    "report",
    "export",
    "key",
    "detect",
    "detector",
    "project",
    "pretrained",
)


class _Parser(argparse.ArgumentParser):
    """argparse with our error format: `ganforge: error: ...` on one line, exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"ganforge: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="ganforge", description="Train, evaluate, sample and serve GANs: CPU-first, offline.")
    parser.add_argument("--version", action="version", version=f"ganforge {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    for name in SUBCOMMANDS:
        try:
            module = importlib.import_module(f"ganforge.cli.{name}")
        except ModuleNotFoundError as e:  # an optional extra (the server's) is not installed
            if e.name and e.name.startswith("ganforge") and e.name != f"ganforge.cli.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (0 ok, 2 user error, 130 on Ctrl-C, 141 when stdout's reader left).

    A process that torchrun started ends here, through os._exit: see _leave_worker.
    """
    try:
        code = _main(argv)
    except KeyboardInterrupt:
        # Ctrl-C before training's own handler is up (imports, data loading, start-up): one line, the shell's 130.
        # A run that was already stepping saves a checkpoint and returns 130 itself.
        print("ganforge: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        # The reader of our output left (`ganforge ... | head`): stop quietly, as Unix tools do, and
        # point stdout at /dev/null so that the interpreter's final flush does not fail again.
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # stdout is not a file (captured, say): nothing to flush there
            pass
        code = 128 + 13  # killed by SIGPIPE, as the shell reports it
    # As distributed.launched_by_torchrun says (without importing torch): one process under torchrun joins gloo too.
    if "WORLD_SIZE" in os.environ:
        _leave_worker(code)
    return code


def _leave_worker(code: int) -> None:
    """End a torchrun worker now, with `code`, skipping the interpreter's teardown.

    The run's files are written (and renamed into place) and the process group is left by then. What is left
    is the interpreter's teardown, where torch's gloo threads and objects are destroyed in no fixed order: in
    CI that aborted a finished 2-process run once ("terminate called without an active exception", SIGABRT;
    not reproduced in 144 runs here), and torchrun then reports the whole job failed. So flush and leave.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed or broken stream: nothing more to say on it
            pass
    os._exit(code)


def _main(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    rank = int(os.environ.get("RANK", "0"))  # torchrun's; rank 0 alone logs and reports errors (no torch import)
    logging.basicConfig(
        level=logging.ERROR if rank else logging.DEBUG if args.verbose else logging.INFO,
        format="%(message)s",
        stream=sys.stderr,
        force=True,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GanforgeError as e:
        if rank == 0:  # every rank meets the same user error: one line, not one a process
            print(f"ganforge: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        if not rank:
            raise
        # A rank whose peer died (or was stopped by torchrun) fails in its next collective: one line, no flood.
        print(f"ganforge: rank {rank} stopped: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}",
              file=sys.stderr)  # fmt: skip
        return 1


if __name__ == "__main__":
    sys.exit(main())
