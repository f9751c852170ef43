"""`ganforge key new --out FILE`: a new secret watermark key (256 random bits, file mode 0600)."""

from __future__ import annotations

import argparse

from ganforge.watermark_keys import write_key

DESCRIPTION = """Make a watermark key: 256 random bits in a file only you can read (mode 0600). Pass it
to `sample`, `serve` and `train` with --key-file FILE (or set GANFORGE_KEY_FILE), and to `detect`
to read the mark back. Whoever has the key can read the mark and forge it: keep it secret, and keep a
copy, since the mark cannot be read without it. An existing file is never overwritten.

  ganforge key new --out ~/.config/ganforge/team.key
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "key",
        help="make a watermark key",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True, parser_class=type(p))
    new = actions.add_parser("new", help="write a new key to --out (never overwrites)", description=DESCRIPTION,
                             formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
    new.add_argument("--out", required=True, metavar="FILE", help="where to write the key (must not exist)")
    new.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    path = write_key(args.out)
    print(f"wrote a new watermark key to {path} (mode 0600); keep it secret and keep a copy")
    return 0
