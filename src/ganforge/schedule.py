"""Learning-rate schedules: the factor on both base learning rates at each step (constant, or decayed to 0)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ganforge.config import TrainConfig
    from ganforge.train_state import TrainState


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """1 until lr_decay_start * steps, then down to 0 at the last step: linearly, or along half a cosine.

    Decaying the step size at the end lets G settle into the distribution it has found instead of circling it
    (SNGAN decays linearly over its whole run; the last steps of a constant-lr GAN keep oscillating).
    """
    start = cfg.lr_decay_start * cfg.steps
    if cfg.lr_decay == "none" or step < start:
        return 1.0
    t = min(1.0, (step - start) / max(1.0, cfg.steps - start))
    return 1.0 - t if cfg.lr_decay == "linear" else 0.5 * (1.0 + math.cos(math.pi * t))


def set_learning_rates(state: TrainState, cfg: TrainConfig) -> None:
    """Scale each optimizer group's base rate ('initial_lr', saved in the optimizer state) to this step's."""
    if cfg.lr_decay == "none":
        return
    factor = lr_factor(state.step, cfg)
    for opt in (state.opt_g, state.opt_d):
        for group in opt.param_groups:
            group["lr"] = group.setdefault("initial_lr", group["lr"]) * factor
