"""The run directory's own files: config.json (with its resume history) and metrics.jsonl."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError, TrainingError
from ganforge.io import write_text_atomic

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"

# What a resumed run may change: how long it runs and how it reports. Anything else (data, model,
# optimizer, loss, regularizers, seed, ...) would make the rest of the run a different experiment.
RESUMABLE_CHANGES = frozenset(
    {"steps", "log_every", "checkpoint_every", "sample_every", "eval_every", "check_every", "tensorboard"}
)


def read_config(run_dir: str | Path) -> tuple[TrainConfig, list[dict[str, Any]]]:
    """A run's config.json -> (its config, the list of changes made when it was resumed)."""
    path = Path(run_dir) / CONFIG_FILE
    try:
        values = json.loads(path.read_text())
        history = values.pop("history", [])
        return TrainConfig.from_dict(values), history
    except FileNotFoundError as e:
        raise ConfigError(f"{path} is missing; resume a run that ganforge started, or start a new --out") from e
    except (json.JSONDecodeError, TypeError, AttributeError) as e:
        raise ConfigError(f"{path} is not a valid run config ({e}); fix or delete it") from e


def write_config(run_dir: Path, cfg: TrainConfig, history: list[dict[str, Any]]) -> None:
    values = cfg.to_dict()
    if history:
        values["history"] = history
    write_text_atomic(run_dir / CONFIG_FILE, json.dumps(values, indent=2) + "\n")


def config_changes(saved: TrainConfig, cfg: TrainConfig) -> dict[str, tuple[Any, Any]]:
    """field -> (saved value, new value) for every field that differs (model fields as model.NAME)."""
    old, new = _flat(saved.to_dict()), _flat(cfg.to_dict())
    return {k: (old.get(k), new.get(k)) for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)}


def check_resume_changes(saved: TrainConfig, cfg: TrainConfig, step: int) -> dict[str, tuple[Any, Any]]:
    """The changes a resume makes, refused (TrainingError) unless each is safe mid-run."""
    changes = config_changes(dataclasses.replace(saved, out_dir=cfg.out_dir), cfg)
    unsafe = {k: v for k, v in changes.items() if k not in RESUMABLE_CHANGES}
    if unsafe:
        listed = "; ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in unsafe.items())
        allowed = ", ".join(sorted(RESUMABLE_CHANGES))
        raise TrainingError(
            f"--resume cannot change {listed}; a resumed run may change only {allowed}; "
            "drop those options, or start a new run with another --out"
        )
    if cfg.steps < step:
        raise TrainingError(f"--steps {cfg.steps} is below the run's current step {step}; pass --steps {step} or more")
    return changes


def trim_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step` (left by a run killed after its last checkpoint, or rolled back)."""
    if not path.exists():
        return
    kept = []
    for line in path.read_text().splitlines():
        try:
            if line.strip() and json.loads(line)["step"] <= step:
                kept.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):  # a line cut short by a kill
            continue
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if isinstance(v, dict):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[prefix + k] = v
    return out
