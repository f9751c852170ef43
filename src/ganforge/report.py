"""The HTML report of one or more runs: one self-contained page of plots, sample grids, warnings and config."""

from __future__ import annotations

import base64
import html
import io
import json
import math
import statistics
import string
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ganforge.errors import DataError
from ganforge.io import write_text_atomic
from ganforge.rundir import read_segments
from ganforge.version import __version__

REPORT_FILE = "report.html"
MEMORISATION_FILE = "memorisation.json"  # bench/emoji_memorisation.py's summary, when it has been run on the run
MEMORISATION_PAIRS = "memorisation.png"  # ... and its closest pairs: samples on top, nearest training images below
MAX_GRIDS = 12  # sample grids shown a run, evenly spaced over the run, so the page stays small
COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf")
# Panels: title -> the metrics.jsonl keys drawn in it (one line a key and run).
PANELS: dict[str, tuple[str, ...]] = {
    "Losses": ("loss_d", "loss_g"),
    "D(x) and D(G(z))": ("d_real", "d_fake"),
    "Critic scores (wgan)": ("critic_real", "critic_fake"),
    "Gradient norms": ("grad_norm_d", "grad_norm_g"),
}
METRIC_KEYS = (
    "fid", "fid_2k", "kid", "classes_covered", "modes_covered", "mode_kl", "diversity_ratio", "high_quality",
    "precision", "recall", "density", "coverage",
)  # fmt: skip
LABELS = {"d_real": "D(x)", "d_fake": "D(G(z))", "critic_real": "critic(x)", "critic_fake": "critic(G(z))"}


@dataclass
class Run:
    """What a run directory holds, read leniently: whatever is missing or damaged is noted, not fatal."""

    path: Path
    name: str
    config: dict[str, Any] | None = None
    rows: list[dict[str, Any]] = field(default_factory=list)
    grids: list[tuple[int, Path]] = field(default_factory=list)
    final_grid: Path | None = None
    eval_result: dict[str, Any] | None = None
    memorisation: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def warnings(self) -> list[tuple[int, str]]:
        return [(int(r["step"]), str(w)) for r in self.rows for w in r.get("warnings") or []]


def _read_json(path: Path, run: Run) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        run.notes.append(f"{path.name} could not be read ({e.__class__.__name__}); left out")
        return None
    if not isinstance(value, dict):
        run.notes.append(f"{path.name} is not a JSON object; left out")
        return None
    return value


def _read_metrics(path: Path, run: Run) -> list[dict[str, Any]]:
    """metrics.jsonl rows with a step; a truncated last line (a run killed mid-write) is skipped and noted."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as e:
        run.notes.append(f"{path.name} could not be read ({e.__class__.__name__})")
        return []
    rows, bad = [], []
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            bad.append(number)
            continue
        if isinstance(row, dict) and isinstance(row.get("step"), (int, float)):
            rows.append(row)
        else:
            bad.append(number)
    if bad == [len(lines)]:
        run.notes.append(f"the last line of {path.name} is incomplete (the run was stopped while writing it); skipped")
    elif bad:
        run.notes.append(f"{len(bad)} unreadable lines in {path.name} (first: line {bad[0]}); skipped")
    rows.sort(key=lambda r: r["step"])
    return rows


def read_run(path: str | Path) -> Run:
    """Read a run directory; raises DataError when it is not one."""
    path = Path(path)
    if not path.is_dir():
        raise DataError(f"{path} is not a folder; pass a run directory (as written by `ganforge train --out`)")
    names = ("config.json", "metrics.jsonl", "generator.safetensors")
    if not any((path / name).is_file() for name in names):
        raise DataError(f"{path} is not a run directory (no config.json, metrics.jsonl or generator); pass a run")
    run = Run(path, path.resolve().name or str(path))
    if (path / "config.json").is_file():
        run.config = _read_json(path / "config.json", run)
    if (path / "metrics.jsonl").is_file():
        run.rows = _read_metrics(path / "metrics.jsonl", run)
    if not run.rows:
        run.notes.append("no logged steps yet")
    for grid in sorted((path / "samples").glob("step_*.png")):
        try:
            run.grids.append((int(grid.stem.removeprefix("step_")), grid))
        except ValueError:
            continue
    run.final_grid = path / "samples.png" if (path / "samples.png").is_file() else None
    if (path / "eval.json").is_file():
        run.eval_result = _read_json(path / "eval.json", run)
    if (path / MEMORISATION_FILE).is_file():
        run.memorisation = _read_json(path / MEMORISATION_FILE, run)
    return run


def _series(run: Run, key: str) -> tuple[list[float], list[float]]:
    steps, values = [], []
    for row in run.rows:
        value = row.get(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            steps.append(float(row["step"]))
            values.append(float(value))
    return steps, values


def _figure_png(runs: list[Run], panels: Sequence[tuple[str, tuple[str, ...]]]) -> str:
    """Panels of curves (runs overlaid, warnings as dotted lines) as base64 PNG."""
    from matplotlib.figure import Figure  # the object API: no pyplot state, no GUI backend
    from matplotlib.ticker import LogFormatter, NullFormatter

    cols = min(3, len(panels))
    rows = math.ceil(len(panels) / cols)
    fig = Figure(figsize=(4.8 * cols, 3 * rows), dpi=80)
    # Fixed margins: a layout engine (constrained/tight) measured every label and took half the render time.
    fig.subplots_adjust(left=0.06, right=0.98, bottom=0.12 / rows, top=1 - 0.08 / rows, wspace=0.18, hspace=0.45)
    axes = fig.subplots(rows, cols, squeeze=False).ravel()
    styles = ("-", "--", ":", "-.")
    for ax, (title, keys) in zip(axes, panels, strict=False):
        for r, run in enumerate(runs):
            color = COLORS[r % len(COLORS)]
            for k, key in enumerate(keys):
                steps, values = _series(run, key)
                if steps:
                    label = LABELS.get(key, key) + (f" ({run.name})" if len(runs) > 1 else "")
                    marker = "o" if len(steps) < 30 else None
                    ax.plot(steps, values, styles[k % len(styles)], color=color, label=label, marker=marker, ms=3)
            for step, _ in run.warnings:
                ax.axvline(step, color=color, alpha=0.5, linestyle=":", linewidth=1)
        if title == "Gradient norms":
            ax.set_yscale("log")
            ax.yaxis.set_major_formatter(LogFormatter())  # "0.1", "10": no mathtext, whose parser costs 0.3 s
            ax.yaxis.set_minor_formatter(NullFormatter())
        # A fixed title position and "step" in the title, not an axis label: matplotlib otherwise measures every
        # tick label to place them, which took over half of the report's time (1.1 -> 0.4 s for a seed run).
        ax.set_title(f"{title} (by step)", fontsize=10, y=1.0)
        ax.tick_params(labelsize=8)
        if len(ax.lines) > 1 + sum(len(run.warnings) for run in runs):  # several curves: say which is which
            ax.legend(fontsize=7)
    for ax in axes[len(panels) :]:
        ax.set_visible(False)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _img(data_b64: str, alt: str) -> str:
    return f'<img src="data:image/png;base64,{data_b64}" alt="{html.escape(alt)}">'


def _file_b64(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    return base64.b64encode(data).decode("ascii") if data.startswith(b"\x89PNG") else None


def _table(rows: list[tuple[str, Any]]) -> str:
    cells = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<table>{cells}</table>"


def _flat(values: dict[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    for key, value in values.items():
        if isinstance(value, dict):
            out += _flat(value, f"{prefix}{key}.")
        else:
            out.append((f"{prefix}{key}", json.dumps(value) if isinstance(value, (list, type(None))) else value))
    return out


def _timings(run: Run) -> list[tuple[str, Any]]:
    out: list[tuple[str, Any]] = []
    total = (run.config or {}).get("steps")
    if run.rows:
        last = int(run.rows[-1]["step"])
        out.append(("last logged step", f"{last:,}" + (f" of {total:,}" if isinstance(total, int) else "")))
    speeds = _series(run, "img_per_s")[1]
    if speeds:
        out.append(("images/s (median of log steps)", f"{statistics.median(speeds):,.0f}"))
    segments = read_segments(run.path)
    if segments:  # each start and resume recorded its own stretch: their sum, not the time since the first start
        wall = sum(float(seg.get("wall_s", 0)) for seg in segments)
        steps = sum(float(seg.get("train_s", 0)) for seg in segments)
        n = len(segments)
        out.append((f"wall time ({n} segment{'s' if n > 1 else ''}: {segments[0].get('started_at', '?')} on)",
                    f"{wall / 60:.1f} min"))  # fmt: skip
        out.append(("training steps alone", f"{steps / 60:.1f} min"))
        return out
    started, ended = run.path / "config.json", run.path / "metrics.jsonl"
    if started.is_file() and ended.is_file():  # a run from before segments.json: an estimate, said so
        seconds = ended.stat().st_mtime - started.stat().st_mtime
        if seconds >= 0:
            out.append(("wall time (config.json to last log line; wrong after a resume)", f"{seconds / 60:.1f} min"))
    return out


def _grids(run: Run) -> str:
    grids = run.grids
    if len(grids) > MAX_GRIDS:
        picks = sorted({round(i * (len(grids) - 1) / (MAX_GRIDS - 1)) for i in range(MAX_GRIDS)})
        grids = [grids[i] for i in picks]
    shown = [(f"step {step:,}", path) for step, path in grids]
    if run.final_grid is not None:
        shown.append(("final (samples.png)", run.final_grid))
    figures = []
    for caption, path in shown:
        data = _file_b64(path)
        if data is not None:
            figures.append(f"<figure>{_img(data, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>")
    return f'<div class="strip">{"".join(figures)}</div>' if figures else "<p>No sample grids.</p>"


def _eval_rows(result: dict[str, Any]) -> list[tuple[str, Any]]:
    rows: list[tuple[str, Any]] = []
    for key, value in result.items():
        if isinstance(value, float):
            rows.append((key, f"{value:.4g}"))
        elif isinstance(value, (int, str)) and not isinstance(value, bool):
            rows.append((key, value))
        elif key == "reference" and isinstance(value, dict):
            rows.append((key, ", ".join(f"{k} {v}" for k, v in value.items())))
    return rows


def _memorisation(run: Run) -> str:
    """The memorisation check: medians, verdict, and the closest pairs' image when it is there."""
    m = run.memorisation or {}
    try:
        verdict = "passes" if m["passes"] else "FAILS"
        text = (
            f"Nearest training image in extractor features: median distance {float(m['sample_median']):.3f} for "
            f"{int(m['n_samples']):,} samples against {float(m['test_median']):.3f} for the {int(m['n_test']):,} "
            f"held-out images (ratio {float(m['ratio']):.2f}): the check {verdict} (samples must sit further away)."
        )
    except (KeyError, TypeError, ValueError):
        return f"<p>{html.escape(MEMORISATION_FILE)} could not be read.</p>"
    pairs = _file_b64(run.path / MEMORISATION_PAIRS)
    distances = ", ".join(f"{float(c['distance']):.3f}" for c in m.get("closest") or [] if isinstance(c, dict))
    figure = ""
    if pairs is not None:
        caption = f"closest pairs: samples (top), nearest training images (bottom); distances {distances}"
        figure = f"<figure>{_img(pairs, caption)}<figcaption>{html.escape(caption)}</figcaption></figure>"
    return f"<p>{html.escape(text)}</p>{figure}"


TEMPLATE = Path(__file__).parent / "templates" / "report.html"  # the page around the body: <head>, CSS ($title, $body)


def render(runs: list[Run]) -> str:
    """The report page for the runs, as HTML text."""
    title = "ganforge report: " + ", ".join(run.name for run in runs)
    parts = [
        f"<p>Written {datetime.now().strftime('%Y-%m-%d %H:%M')} by ganforge {html.escape(__version__)}. "
        "Dotted vertical lines mark the steps where a warning was raised.</p>",
    ]
    for r, run in enumerate(runs):
        color = COLORS[r % len(COLORS)] if len(runs) > 1 else "#222"
        parts.append(f'<p><b style="color:{color}">&#9632; {html.escape(run.name)}</b> {html.escape(str(run.path))}')
        parts += [f'<br><span class="note">{html.escape(note)}</span>' for note in run.notes]
        parts.append("</p>")
    panels = [(t, keys) for t, keys in PANELS.items() if any(_series(run, k)[0] for run in runs for k in keys)]
    metric_panels = [(k, (k,)) for k in METRIC_KEYS if any(_series(run, k)[0] for run in runs)]
    if panels:
        parts.append(f"<h2>Training curves</h2>{_img(_figure_png(runs, panels), 'training curves')}")
    if metric_panels:
        parts.append(f"<h2>Quality checks</h2>{_img(_figure_png(runs, metric_panels), 'quality metrics')}")
    if any(run.warnings for run in runs):
        parts.append("<h2>Warnings</h2><table>")
        for run in runs:
            for step, text in run.warnings:
                cells = f"<td>{html.escape(run.name)}</td><td>{step:,}</td><td>{html.escape(text)}</td>"
                parts.append(f'<tr class="warn">{cells}</tr>')
        parts.append("</table>")
    for run in runs:
        parts.append(f"<h2>{html.escape(run.name)}: samples over time</h2>{_grids(run)}")
        if run.memorisation is not None:
            parts.append(f"<h3>Memorisation check</h3>{_memorisation(run)}")
        parts.append('<div class="columns">')
        if run.eval_result:
            parts.append(f"<div><h3>Evaluation (eval.json)</h3>{_table(_eval_rows(run.eval_result))}</div>")
        timings = _timings(run)
        if timings:
            parts.append(f"<div><h3>Timings</h3>{_table(timings)}</div>")
        if run.config:
            parts.append(f"<div><h3>Config</h3>{_table(_flat(run.config))}</div>")
        parts.append("</div>")
    page = string.Template(TEMPLATE.read_text(encoding="utf-8"))
    return page.substitute(title=html.escape(title), body="\n".join(parts))


def write_report(run_dirs: list[Path], out: Path) -> Path:
    """Write one self-contained HTML page (plots and images inline) for the runs; returns its path.

    Example:
        >>> write_report([Path("runs/seed"), Path("runs/dcgan")], Path("compare.html"))
    """
    if not run_dirs:
        raise DataError("no run directories given; pass at least one run")
    runs = [read_run(path) for path in run_dirs]
    out = Path(out)
    if out.is_dir():
        raise DataError(f"report output {out} is a folder; pass a file name such as {out / REPORT_FILE}")
    write_text_atomic(out, render(runs))
    return out
