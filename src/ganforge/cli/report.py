"""`ganforge report`: one self-contained HTML page of a run (or several runs overlaid)."""

from __future__ import annotations

import argparse
from pathlib import Path

from ganforge.report import REPORT_FILE, write_report

DESCRIPTION = """Write an HTML report of a run: loss curves, D(x) and D(G(z)), gradient norms, quality
checks with the warnings marked, the sample grids over time, eval.json and the config. The page is
one file with everything inline (no network). Several runs overlay their curves.

  ganforge report runs/seed                          # writes runs/seed/report.html
  ganforge report runs/seed runs/dcgan --out compare.html
"""


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="write a run's HTML report (several runs overlay)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument("--out", metavar="FILE", help=f"where to write (default: RUN/{REPORT_FILE} for one run)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    runs = [Path(r) for r in args.runs]
    if args.out:
        out = Path(args.out)
    elif len(runs) == 1:
        out = runs[0] / REPORT_FILE
    else:
        out = Path(REPORT_FILE)
    path = write_report(runs, out)
    print(f"wrote {path}")
    return 0
