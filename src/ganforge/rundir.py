"""The run directory's own files: config.json (with its resume history), metrics.jsonl, segments.json, the lock."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import time
from pathlib import Path
from typing import Any, TextIO

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError, TrainingError
from ganforge.io import write_text_atomic

CONFIG_FILE = "config.json"
METRICS_FILE = "metrics.jsonl"
SEGMENTS_FILE = "segments.json"  # each stretch of training: when it started and stopped, steps and seconds
LOCK_FILE = ".lock"  # held (flock) by the one process writing the run; the OS drops it when that process ends
DISCARDED_DIR = "discarded"  # what a rewind moved aside

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


class RunLock:
    """An exclusive OS lock on RUN/.lock, so that two trainings never write one run directory.

    flock() locks die with their process (kill -9 included), so a crashed run never leaves a stale lock.
    Where flock does not exist (Windows), the lock is a no-op.
    """

    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LOCK_FILE
        self.file: TextIO | None = None

    def acquire(self) -> None:
        """Take the lock (creating the folder) or raise TrainingError naming the process that holds it."""
        try:
            import fcntl
        except ImportError:  # no flock on this platform
            return
        if self.file is not None:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            file = open(self.path, "a+")  # noqa: SIM115 (kept open: the lock lives as long as the file is open)
        except OSError as e:
            raise TrainingError(
                f"cannot write the run directory {self.path.parent}: {e.strerror}; choose a writable --out"
            ) from e
        try:
            fcntl.flock(file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            file.seek(0)
            holder = file.read().strip() or "another process"
            file.close()
            raise TrainingError(
                f"{self.path.parent} is being written by a running training (pid {holder}); wait for it to finish, "
                "stop it, or choose another --out"
            ) from None
        file.seek(0)
        file.truncate()
        file.write(f"{os.getpid()}\n")
        file.flush()
        self.file = file

    def release(self) -> None:
        if self.file is not None:
            self.file.close()  # closing drops the flock
            self.file = None


def read_segments(run_dir: str | Path) -> list[dict[str, Any]]:
    """The run's training segments (one per start or resume), oldest first; [] when none was recorded."""
    path = Path(run_dir) / SEGMENTS_FILE
    try:
        values = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return []
    return [v for v in values if isinstance(v, dict)] if isinstance(values, list) else []


class Segments:
    """This process's stretch of training, appended to segments.json whenever the run saves."""

    def __init__(self, run_dir: Path, start_step: int) -> None:
        self.path = run_dir / SEGMENTS_FILE
        self.earlier = read_segments(run_dir)
        self.start_step = start_step
        self.started_at = time.time()
        self.t0 = time.perf_counter()

    def write(self, step: int, train_seconds: float) -> None:
        current = {
            "started_at": _iso(self.started_at),
            "stopped_at": _iso(time.time()),
            "start_step": self.start_step,
            "stop_step": step,
            "wall_s": round(time.perf_counter() - self.t0, 2),
            "train_s": round(train_seconds, 2),
        }
        write_text_atomic(self.path, json.dumps([*self.earlier, current], indent=1) + "\n")


def _iso(seconds: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


_STEP_FILE = re.compile(r"step_(\d+)\.")


def discard_after(run_dir: Path, step: int) -> tuple[Path, list[str]] | None:
    """A rewind to `step`: move later checkpoints, sample grids and metrics rows into RUN/discarded/after_step_N.

    Returns (that folder, what was moved) or None when nothing lay past `step`. The metrics rows are kept there as
    metrics.jsonl, so the discarded branch can still be read; the live metrics.jsonl is trimmed to `step`.
    """
    later = [
        path
        for folder in (run_dir / "checkpoints", run_dir / "samples")
        if folder.is_dir()
        for path in sorted(folder.iterdir())
        if (m := _STEP_FILE.match(path.name)) and int(m.group(1)) > step
    ]
    metrics = run_dir / METRICS_FILE
    rows = _rows_after(metrics, step)
    if not later and not rows:
        return None
    dest = run_dir / DISCARDED_DIR / f"after_step_{step}"
    n = 1
    while dest.exists():  # an earlier rewind to the same step
        n += 1
        dest = run_dir / DISCARDED_DIR / f"after_step_{step}-{n}"
    moved = []
    for path in later:
        target = dest / path.parent.name / path.name
        target.parent.mkdir(parents=True, exist_ok=True)
        path.replace(target)
        moved.append(f"{path.parent.name}/{path.name}")
    if rows:
        dest.mkdir(parents=True, exist_ok=True)
        write_text_atomic(dest / METRICS_FILE, "".join(row + "\n" for row in rows))
        moved.append(f"{len(rows)} metrics rows")
    trim_metrics(metrics, step)
    return dest, moved


def _rows_after(path: Path, step: int) -> list[str]:
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            if line.strip() and json.loads(line)["step"] > step:
                rows.append(line)
        except (json.JSONDecodeError, KeyError, TypeError):
            continue
    return rows
