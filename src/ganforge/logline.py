"""What a training run prints: the line of a logged step, and notes that periodic evaluations repeat, shown once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class Once(logging.Filter):
    """Lets each distinct message through once (periodic evaluations repeat the same data notes).

    A logger's filters see only the records logged on that logger, so quiet_repeats puts it on each of ours.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if message in self.seen:
            return False
        self.seen.add(message)
        return True


@contextmanager
def quiet_repeats(once: Once) -> Iterator[None]:
    """Within the block, every ganforge logger passes each distinct message once (across all blocks using `once`)."""
    loggers = [
        logger
        for name, logger in logging.Logger.manager.loggerDict.items()
        if name.startswith("ganforge") and isinstance(logger, logging.Logger)
    ]
    for logger in loggers:
        logger.addFilter(once)
    try:
        yield
    finally:
        for logger in loggers:
            logger.removeFilter(once)


def log_line(step: int, logged: dict[str, float]) -> str:
    """`step 1200  loss_d 1.31  loss_g 0.84  D(x) 0.61  D(G(z)) 0.35  img/s 950`, plus metric figures when present."""
    parts = [
        f"step {step}",
        f"loss_d {logged['loss_d']:.3f}",
        f"loss_g {logged['loss_g']:.3f}",
        *(
            [f"critic(x) {logged['critic_real']:.2f}", f"critic(G(z)) {logged['critic_fake']:.2f}"]
            if "critic_real" in logged
            else [f"D(x) {logged['d_real']:.2f}", f"D(G(z)) {logged['d_fake']:.2f}"]
        ),
        f"img/s {logged['img_per_s']:.0f}",
    ]
    for key, label, fmt in (
        ("ada_p", "ada_p", ".2f"),
        ("fid", "FID", ".2f"),
        ("modes_covered", "classes", ".0f"),
        ("classes_covered", "classes", ".0f"),
        ("mode_kl", "mode_KL", ".3f"),
        ("stacked_modes", "stacked_modes", ".0f"),  # stacked-mnist: R-G-B triples of 1,000
        ("precision", "precision", ".2f"),
        ("recall", "recall", ".2f"),
    ):
        if key in logged and not (label == "classes" and "classes" in " ".join(parts)):
            parts.append(f"{label} {logged[key]:{fmt}}")
    return "  ".join(parts)


def scalars(result: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of an eval result, for metrics.jsonl."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
