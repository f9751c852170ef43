"""`ganforge pretrained [list|show NAME]`: the generators shipped in the package, usable as pretrained:NAME."""

from __future__ import annotations

import argparse
import json

DESCRIPTION = """List the generators that ship with ganforge. Pass one as pretrained:NAME wherever a run
directory or generator file goes; it works offline, right after install:

  ganforge sample pretrained:mnist-hq --class 7 --out sevens.png
  ganforge serve pretrained:fashion-mnist
  ganforge project pretrained:mnist-hq digit.png --out proj/
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrained",
        help="list the generators shipped with ganforge (pretrained:NAME)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="pretrained_command", metavar="ACTION", parser_class=type(parser))
    parser.set_defaults(func=run_list)  # plain `ganforge pretrained` lists them
    list_parser = sub.add_parser("list", help="names, what each is, size, headline figure")
    list_parser.set_defaults(func=run_list)
    show_parser = sub.add_parser("show", help="everything recorded about one: training command, config, eval figures")
    show_parser.add_argument("name", metavar="NAME", help="a name from `ganforge pretrained list`")
    show_parser.set_defaults(func=run_show)


def run_list(args: argparse.Namespace) -> int:
    from ganforge.pretrained import listing

    rows = listing()
    if not rows:
        print("this install ships no pretrained generators")
        return 0
    table = [("SPEC", "DESCRIPTION", "SIZE", "HEADLINE")]
    table += [(r["spec"], r["description"], f"{r['bytes'] / 1e6:.2f} MB", r["headline"]) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(3)]
    for row in table:
        print(f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}  {row[3]}".rstrip())
    return 0


def run_show(args: argparse.Namespace) -> int:
    from ganforge.pretrained import PREFIX, card, resolve

    name = args.name.removeprefix(PREFIX)
    path = resolve(name)  # an unknown name says which exist
    print(json.dumps({"path": str(path), **card(name)}, indent=2))
    return 0
