"""`ganforge data list|prepare`: show the data specs and where they are found; download MNIST sets."""

from __future__ import annotations

import argparse
import sys

# ganforge.data.DOWNLOADABLE, written out so that `--help` needs no torch (a test keeps them equal).
DOWNLOADABLE = ("mnist", "fashion-mnist")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list data specs, download MNIST or Fashion-MNIST",
        description="List the data specs, or download MNIST or Fashion-MNIST.",
    )
    sub = parser.add_subparsers(dest="data_command", metavar="ACTION", parser_class=type(parser))
    parser.set_defaults(func=lambda args: _help(parser))

    list_parser = sub.add_parser(
        "list",
        help="print every data spec and where it is found",
        description="Print every data spec, what it is, and where it is found.",
    )
    list_parser.add_argument("--data-dir", default=None, help="also look in this folder")
    list_parser.set_defaults(func=run_list)

    prepare_parser = sub.add_parser(
        "prepare", help="download mnist or fashion-mnist", description="Download a data set and verify checksums."
    )
    prepare_parser.add_argument("name", metavar="NAME", help=f"one of {', '.join(DOWNLOADABLE)}")
    prepare_parser.add_argument("--data-dir", default=None, help="download into this folder (default: the cache)")
    prepare_parser.set_defaults(func=run_prepare)


def _help(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_list(args: argparse.Namespace) -> int:
    from ganforge.data import list_sources

    rows = list_sources(args.data_dir)
    widths = [max(len(row[key]) for row in rows) for key in ("spec", "description")]
    print(f"{'SPEC':<{widths[0]}}  {'DESCRIPTION':<{widths[1]}}  FOUND")
    for row in rows:
        print(f"{row['spec']:<{widths[0]}}  {row['description']:<{widths[1]}}  {row['found']}")
    return 0


def run_prepare(args: argparse.Namespace) -> int:
    from ganforge.data import prepare

    folder = prepare(args.name, data_dir=args.data_dir)
    print(f"{args.name}: {folder}", file=sys.stdout)
    return 0
