"""RUN/MODEL_CARD.md: a Hugging Face model card with the sections of Mitchell et al. 2019, from the run's own files.

Every number comes from config.json, eval.json (when the run was evaluated), metrics.jsonl and the generator file,
written as those files hold it (exact, not rounded), so a reader can check the card against them. The training
data's identity (spec, size, content sha256) comes from the training loop, which has the data in memory; a
refresh (`ganforge eval`) keeps what the card recorded before.
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

from ganforge.errors import GanforgeError

log = logging.getLogger(__name__)

CARD_FILE = "MODEL_CARD.md"
LICENSE = "mit"  # ganforge's own; the card says the training data's terms are the data set's
_DATA_LINE = re.compile(r"^  training_data: (\{.*\})$", re.MULTILINE)
# eval.json key -> (model-index metric type, name on the card); all present ones are listed.
METRICS = {
    "fid": ("fid", "FID"),
    "kid": ("kid", "KID"),
    "precision": ("precision", "Precision"),
    "recall": ("recall", "Recall"),
    "density": ("density", "Density"),
    "coverage": ("coverage", "Coverage"),
    "classifier_score": ("classifier_score", "Classifier score"),
    "modes_covered": ("modes_covered", "Modes covered"),
    "mode_kl": ("mode_kl", "Mode KL"),
    "stacked_modes": ("stacked_modes", "Stacked modes covered"),
    "stacked_kl": ("stacked_kl", "Stacked mode KL"),
}


def data_identity(dataset: Any) -> dict[str, Any]:
    """{spec, name, split, size, sha256, source} of a ganforge Dataset, as the card records it."""
    return {"spec": dataset.spec, "name": dataset.name, "split": dataset.split, "size": len(dataset),
            "sha256": dataset.content_hash(), "source": dataset.source}  # fmt: skip


def _read_json(path: Path) -> dict[str, Any] | None:
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise GanforgeError(f"{path} is not valid JSON ({e}); rerun the command that writes it") from e
    return value if isinstance(value, dict) else None


def _metrics_rows(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line cut short by a stopped run
        if isinstance(row, dict):
            rows.append(row)
    return rows


def _generator_facts(path: Path) -> dict[str, Any]:
    """sha256, parameter count and provenance of the generator file (no model is built)."""
    from safetensors import safe_open

    from ganforge.io import file_digest

    params = 0
    with safe_open(str(path), framework="pt") as f:
        metadata = dict(f.metadata() or {})
        for key in f.keys():
            shape = f.get_slice(key).get_shape()
            count = 1
            for dim in shape:
                count *= dim
            params += count
    return {"sha256": file_digest(path), "parameters": params,
            "provenance": json.loads(metadata.get("provenance", "{}"))}  # fmt: skip


def _previous_data(card: Path) -> dict[str, Any] | None:
    if not card.is_file():
        return None
    match = _DATA_LINE.search(card.read_text())
    return json.loads(match.group(1)) if match else None


def _num(value: Any) -> str:
    """A number exactly as JSON holds it."""
    return json.dumps(value)


def _watermark_payload(sha256: str) -> str | None:
    """The 32-bit payload hex this generator's images carry, when ganforge.watermark is installed."""
    try:
        import importlib

        import numpy as np

        bits = importlib.import_module("ganforge.watermark").payload_bits(sha256, 32)
        return np.packbits(np.asarray(bits, dtype=np.uint8)).tobytes().hex()
    except (ImportError, AttributeError):
        return None


def render(run_dir: str | Path, *, training_data: dict[str, Any] | None = None) -> str:
    """The card's Markdown for a run directory (config.json and generator.safetensors must exist)."""
    run = Path(run_dir)
    config = _read_json(run / "config.json")
    if config is None:
        raise GanforgeError(f"{run} has no config.json; pass a run directory written by `ganforge train`")
    generator_path = run / "generator.safetensors"
    if not generator_path.is_file():
        raise GanforgeError(f"{run} has no generator.safetensors yet; train the run first")
    ev = _read_json(run / "eval.json")
    rows = _metrics_rows(run / "metrics.jsonl")
    gen = _generator_facts(generator_path)
    data = training_data or _previous_data(run / CARD_FILE)
    model, name = config["model"], run.resolve().name
    steps_done = rows[-1]["step"] if rows and "step" in rows[-1] else gen["provenance"].get("step")
    warnings = sorted({w for row in rows for w in row.get("warnings", [])})
    payload = _watermark_payload(gen["sha256"])

    # 1. Front matter: Hugging Face's keys; model-index only with eval numbers.
    front = ["---", "library_name: ganforge", "pipeline_tag: unconditional-image-generation", f"license: {LICENSE}",
             f"tags: [ganforge, gan, {json.dumps(config['preset'])}, {json.dumps(model['arch'])}]"]  # fmt: skip
    if ev is not None:
        ref = ev.get("reference", {})
        front += ["model-index:", f"- name: {json.dumps(name)}", "  results:", "  - task:",
                  "      type: unconditional-image-generation", "    dataset:",
                  f"      type: {json.dumps(ref.get('name', ev.get('data')))}",
                  f"      name: {json.dumps(ref.get('name', ev.get('data')))}",
                  f"      split: {json.dumps(ref.get('split'))}", "    metrics:"]  # fmt: skip
        extractor = ev.get("extractor", {}).get("name")
        for key, (kind, label) in METRICS.items():
            if ev.get(key) is not None:
                front += [f"    - type: {kind}", f"      value: {_num(ev[key])}",
                          f"      name: {json.dumps(f'{label} ({extractor} features)')}"]  # fmt: skip
    front += ["ganforge:", f"  generator_sha256: {gen['sha256']}"]
    if data is not None:
        front.append(f"  training_data: {json.dumps(data, sort_keys=True)}")
    front.append("---")

    # 2. The sections of Mitchell et al. 2019.
    regs = [f"{k} {_num(config[k])}" for k in ("r1", "r2", "gp") if config.get(k)]
    body = [
        f"# Model card: {name}",
        "",
        "## Model details",
        "",
        f"- A generative adversarial network trained with ganforge {gen['provenance'].get('ganforge_version', '')}"
        f" (preset `{config['preset']}`): architecture `{model['arch']}`, width {_num(model['width'])}, latent size "
        f"{_num(model['z_dim'])}, images {_num(model['image_size'])}x{_num(model['image_size'])} with "
        f"{_num(model['channels'])} channel(s), "
        + (f"{_num(model['num_classes'])} classes (conditional)." if model["num_classes"] else "unconditional."),
        f"- Generator: `generator.safetensors`, sha256 `{gen['sha256']}`, {gen['parameters']:,} parameters.",
        f"- Training: loss `{config['loss']}`, {_num(steps_done)} of {_num(config['steps'])} steps, batch size "
        f"{_num(config['batch_size'])}, Adam lr G {_num(config['lr_g'])} / D {_num(config['lr_d'])}, betas "
        f"({_num(config['beta1'])}, {_num(config['beta2'])}), EMA decay {_num(config['ema_decay'])}, seed "
        f"{_num(config['seed'])}" + (f", regularizers: {', '.join(regs)}." if regs else "."),
        "- The full configuration is the run's `config.json`.",
        "",
        "## Intended use",
        "",
        f"- Research and teaching: studying how GANs train, and drawing samples that look like `{config['data']}`.",
        "- Not intended for: passing generated images off as real ones, or as data about real people or events.",
        "",
        "## Factors",
        "",
        f"- The model knows only its training data's domain ({_num(model['image_size'])}x"
        f"{_num(model['image_size'])} images like `{config['data']}`). Quality differs between classes and seeds; "
        "truncation trades variety for quality.",
        "",
        "## Metrics",
        "",
    ]
    if ev is None:
        body += ["This run has not been evaluated: `ganforge eval RUN` writes eval.json and refreshes this card.", ""]
    else:
        body += [f"From eval.json: {_num(ev.get('n_samples'))} samples (seed {_num(ev.get('seed'))}), features of "
                 f"the `{ev.get('extractor', {}).get('name')}` extractor (sha256 "
                 f"`{ev.get('extractor', {}).get('sha256')}`), not Inception.", "",
                 "| metric | value |", "| --- | --- |"]  # fmt: skip
        body += [f"| {label} | {_num(ev[key])} |" for key, (_, label) in METRICS.items() if ev.get(key) is not None]
        body.append("")
    body += ["## Evaluation data", ""]
    if ev is None:
        body += ["No evaluation yet (see Metrics).", ""]
    else:
        ref = ev.get("reference", {})
        body += [f"The `{ref.get('split')}` split of `{ref.get('name')}`, {_num(ref.get('count'))} images "
                 f"(data spec `{ev.get('data')}`).", ""]  # fmt: skip
    body += ["## Training data", ""]
    if data is not None:
        body += [f"`{data['spec']}` ({data['name']}, split `{data['split']}`): {_num(data['size'])} images, content "
                 f"sha256 `{data['sha256']}`, read from `{data['source']}`.", ""]  # fmt: skip
    else:
        body += [f"Data spec `{config['data']}`; its size and digest were not recorded when this card was written.", ""]
    body += [
        "## Ethical considerations",
        "",
        "- GAN images can be used to mislead (fake news, deepfakes). Every image ganforge writes says it is "
        "synthetic: ganforge text chunks and the IPTC digital source type `trainedAlgorithmicMedia` in XMP, and by "
        "default a keyed invisible watermark whose payload is derived from this generator's sha256"
        + (f" (32-bit payload `{payload}`)." if payload else "."),
        "- `ganforge detect` reads the watermark (with the key) and scores images with a passive detector that needs "
        "no key. Neither is proof: metadata is stripped by any re-save, the watermark by heavy edits, and the "
        "detector can miss generators unlike those it was trained on (docs/detection.md).",
        f"- The training data's own terms apply to this model (`{config['data']}`).",
        "",
        "## Caveats and recommendations",
        "",
        "- Scores use ganforge's shipped feature extractors and depend on the sample count and reference split; "
        "compare them only under the same protocol.",
    ]
    if warnings:
        body.append(f"- Training raised these warnings (metrics.jsonl): {', '.join(warnings)}.")
    else:
        body.append("- Training raised no warnings (metrics.jsonl).")
    return "\n".join(front + body) + "\n"


def write_model_card(run_dir: str | Path, *, training_data: dict[str, Any] | None = None) -> Path:
    """Write RUN/MODEL_CARD.md atomically; returns its path."""
    from ganforge.io import write_text_atomic

    path = Path(run_dir) / CARD_FILE
    write_text_atomic(path, render(run_dir, training_data=training_data))
    return path


def refresh(run_dir: str | Path, *, training_data: dict[str, Any] | None = None) -> Path | None:
    """write_model_card, logging a warning instead of raising: a card that fails never ends a run or an eval."""
    try:
        return write_model_card(run_dir, training_data=training_data)
    except (GanforgeError, OSError, KeyError, ValueError) as e:
        log.warning("warning: the model card was not written: %s", e)
        return None


def read_model_card(path: str | Path) -> str | None:
    """The card beside a generator: RUN/MODEL_CARD.md for a run directory or a file in one; None if there is none."""
    path = Path(path)
    card = (path if path.is_dir() else path.parent) / CARD_FILE
    return card.read_text() if card.is_file() else None
