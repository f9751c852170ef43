"""`ganforge data list|prepare|pack`: show the data specs; download MNIST sets; pack images into a dataset."""

from __future__ import annotations

import argparse
import sys

# ganforge.data.DOWNLOADABLE, written out so that `--help` needs no torch (a test keeps them equal).
DOWNLOADABLE = ("mnist", "fashion-mnist")
RESIZE_FILTERS = ("lanczos", "box", "bicubic", "bilinear")  # ganforge.data.folder.FILTERS, as above


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "data",
        help="list data specs, download MNIST or Fashion-MNIST, pack images",
        description="List the data specs, download MNIST or Fashion-MNIST, or pack images into a dataset.",
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

    pack_parser = sub.add_parser(
        "pack",
        help="decode images once into a packed dataset (or a stylegan2-ada zip)",
        description=(
            "Decode SRC once, in worker processes, into DEST: a packed dataset folder that training memory-maps "
            "(data spec packed:DEST), or with DEST ending .zip the layout of stylegan2-ada's dataset tool."
        ),
    )
    pack_parser.add_argument("src", metavar="SRC", help="a data spec: folder:DIR, zip:FILE, idx:DIR, mnist, ...")
    pack_parser.add_argument("--out", required=True, metavar="DEST", help="a new folder, or FILE.zip")
    pack_parser.add_argument("--image-size", type=int, default=None, help="side in pixels (default: the images')")
    pack_parser.add_argument("--channels", type=int, choices=(1, 3), default=None, help="default: 1 if all grey")
    pack_parser.add_argument(
        "--resize-filter",
        choices=("auto", *RESIZE_FILTERS),
        default="auto",
        help="default auto: lanczos, or box when the scale factor is a whole number",
    )
    pack_parser.add_argument("--workers", type=int, default=None, help="decoding processes (default: one a CPU)")
    pack_parser.set_defaults(func=run_pack)


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


def run_pack(args: argparse.Namespace) -> int:
    from ganforge.cli.common import is_terminal
    from ganforge.data.pack import pack

    bar = None
    if is_terminal():
        from tqdm import tqdm

        bar = tqdm(unit="img", dynamic_ncols=True, leave=False)

    def on_progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        result = pack(
            args.src,
            args.out,
            image_size=args.image_size,
            channels=args.channels,
            resize_filter=args.resize_filter,
            workers=args.workers,
            on_progress=on_progress,
        )
    finally:
        if bar is not None:
            bar.close()
    print(result.summary())
    spec = f"zip:{result.out}" if result.out.suffix == ".zip" else f"packed:{result.out}"
    print(f"train on it: ganforge train --data {spec} --image-size {result.shape[1]}")
    return 0
