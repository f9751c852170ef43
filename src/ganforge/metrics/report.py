"""The terminal table of an eval.json result; every score is labelled with its extractor ("FID (Inception)")."""

from __future__ import annotations

from typing import Any

# (key, label, how to read it)
ROWS = (
    ("fid", "FID", "Fréchet distance of features, lower is better"),
    ("kid", "KID", "kernel distance (mean over subsets), lower is better"),
    ("precision", "precision", "share of samples on the real manifold (fidelity)"),
    ("recall", "recall", "share of real data on the samples' manifold (diversity)"),
    ("density", "density", "real neighbourhoods per sample / k (about 1 for real data)"),
    ("coverage", "coverage", "share of real neighbourhoods holding a sample"),
    ("classifier_score", "classifier score", "Inception-Score-style, at most the number of classes"),
    ("inception_score", "IS", "Inception Score, mean ± std over splits, higher is better"),
    ("modes_covered", "modes covered", "classes with at least a tenth of a fair share of confident samples"),
    ("high_quality", "high quality", "share of samples within 3 std of a mode"),
    ("mode_kl", "mode KL", "KL(sample classes || reference classes), lower is better"),
    ("class_match", "class match", "share of a conditional G's samples read as the class they were drawn for"),
    ("stacked_modes", "stacked modes", "distinct R-G-B digit triples among the samples"),
    ("stacked_kl", "stacked KL", "KL(sample triples || uniform over 1,000), lower is better"),
    ("stacked_confident", "stacked confident", "share of samples whose 3 digits all read with probability >= 0.5"),
)


def _value(result: dict[str, Any], key: str) -> str:
    value = result.get(key)
    if value is None:
        return "-"
    if key == "kid":
        std = result.get("kid_std")
        return f"{value:.5f} ± {std:.5f}" if std is not None else f"{value:.5f}"
    if key == "inception_score":
        std = result.get("inception_score_std")
        return f"{value:.3f} ± {std:.3f}" if std is not None else f"{value:.3f}"
    if key == "modes_covered":
        return f"{value} / {result.get('num_modes')}"
    if key == "stacked_modes":
        return f"{value} / 1000"
    if isinstance(value, float):
        return f"{value:.2f}" if key in ("fid", "classifier_score") else f"{value:.4f}"
    return str(value)


def extractor_label(result: dict[str, Any]) -> str | None:
    """How the result's scores name their extractor: "mnist features", "Inception", "2-D points"."""
    ext = result.get("extractor") or {}
    if ext.get("label"):
        return str(ext["label"])
    return f"{ext['name']} features" if ext.get("name") else None  # eval.json written before labels


def score_labels(result: dict[str, Any], extractor: str | None) -> dict[str, str]:
    """key -> "FID (mnist features)" for every score in the result that has a value."""
    suffix = f" ({extractor})" if extractor else ""
    return {key: f"{label}{suffix}" for key, label, _ in ROWS if result.get(key) is not None}


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of the scores in an `evaluate` result, with its protocol underneath."""
    labels = score_labels(result, extractor_label(result))
    shown = [row for row in ROWS if row[0] in result and not (row[0] == "inception_score" and result[row[0]] is None)]
    rows = [(labels.get(key, label), _value(result, key), note) for key, label, note in shown]
    width_label = max(len(r[0]) for r in rows)
    width_value = max(len(r[1]) for r in rows)
    lines = [f"{label:<{width_label}}  {value:>{width_value}}  {note}" for label, value, note in rows]
    ref, ext, protocol = result.get("reference") or {}, result.get("extractor") or {}, result.get("protocol") or {}
    sha = (ext.get("sha256") or "")[:12]
    lines.append("")
    lines.append(
        f"{result.get('n_samples', '?'):,} samples (seed {result.get('seed', '?')}) vs {ref.get('name')} "
        f"{ref.get('split')} ({ref.get('count', 0):,}); extractor {ext.get('name')}{f' ({sha})' if sha else ''}"
        f"{', per channel' if ext.get('per_channel') else ''}; "
        f"{result.get('time_s', 0):.1f} s"
    )
    if protocol.get("resize") and ext.get("name") == "inception":
        lines.append(f"images: {protocol.get('quantisation')}; resized {protocol['resize']}")
    return "\n".join(lines)
