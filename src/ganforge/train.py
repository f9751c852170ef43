"""`train(cfg)`: the library's entry point for a training run (the loop is in loop.py, the step in step.py)."""

from __future__ import annotations

import gc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ganforge import distributed
from ganforge.config import TrainConfig
from ganforge.data import Dataset
from ganforge.device import resolve_device
from ganforge.loop import RunResult, TrainingLoop
from ganforge.marking import WatermarkSetting
from ganforge.models import Generator
from ganforge.step import train_step
from ganforge.train_state import build_state

__all__ = ["RunResult", "build_state", "train", "train_step"]  # the step's callers build and step through here


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    resume_from: str | Path | None = None,
    dataset: Dataset | None = None,
    on_step: Callable[[int, dict[str, float] | None], None] | None = None,
    evaluator: Callable[[Generator], dict[str, Any]] | None = None,
    watch: bool = False,
    watermark: WatermarkSetting = True,
) -> RunResult:
    """Train a GAN as `cfg` says; writes the run directory (DESIGN.md) and returns a RunResult.

    Args:
        resume: continue from the run's latest good checkpoint; cfg.steps is the run's total. A resume may
            change only rundir.RESUMABLE_CHANGES (steps, cadences); anything else is refused before any write.
        resume_from: continue from this checkpoint file instead (implies resume).
        on_step: called after every step with (step, logged stats or None).
        evaluator: G -> metrics dict, called every cfg.eval_every steps (default: ganforge.metrics.evaluate).
        watch: rewrite RUN/report.html at every sample step, to follow the run in a browser.
        watermark: the sample grids' watermark: True the default key (made on first use), bytes that key,
            False off. The key never goes into the run directory.

    Example:
        >>> ganforge.train(dataclasses.replace(ganforge.PRESETS["seed"], steps=2_000, out_dir="runs/quick"))
    """
    # Under torchrun (WORLD_SIZE set) join the process group: gloo on the CPU, NCCL with a GPU a rank.
    dist = distributed.init_from_env(resolve_device(cfg.device), backend="auto")
    try:
        result = TrainingLoop(cfg, resume=resume or resume_from is not None, resume_from=resume_from, dataset=dataset,
                              on_step=on_step, evaluator=evaluator, dist=dist, watch=watch,
                              watermark=watermark).run()  # fmt: skip
        if dist.is_distributed:
            # The loop's DDP wrappers hold the process group: collect whatever of the loop only a reference cycle
            # keeps alive now, while the group is up, not at interpreter exit after it was shut down. Then leave
            # together: rank 0 may still be writing the grid and the report (a rank that tears gloo down while its
            # peer works aborts the job).
            gc.collect()
            distributed.barrier(dist)
        return result
    finally:
        distributed.cleanup(dist)
