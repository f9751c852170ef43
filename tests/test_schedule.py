"""Learning-rate schedules: the factor's shape, the rates a run trains with, and the config's checks."""

import dataclasses
import json
import math

import pytest
from test_train import tiny_cfg, tiny_data

from ganforge.config import TrainConfig
from ganforge.errors import ConfigError
from ganforge.schedule import lr_factor
from ganforge.train import train


def test_the_factor_is_1_until_the_start_then_falls_to_0():
    linear = TrainConfig(steps=100, lr_decay="linear", lr_decay_start=0.5)
    assert [lr_factor(s, linear) for s in (0, 49, 50)] == [1.0, 1.0, 1.0]
    assert lr_factor(75, linear) == pytest.approx(0.5)
    assert lr_factor(99, linear) == pytest.approx(0.02)
    assert lr_factor(100, linear) == 0.0  # past the end (a longer --steps on resume moves the end instead)
    cosine = dataclasses.replace(linear, lr_decay="cosine")
    assert lr_factor(75, cosine) == pytest.approx(0.5)
    assert lr_factor(60, cosine) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.2)))
    assert lr_factor(60, cosine) > lr_factor(60, linear)  # the cosine holds the rate longer, then drops faster
    assert all(lr_factor(s, TrainConfig(steps=100)) == 1.0 for s in range(0, 101, 10))


def test_a_decaying_run_trains_with_the_scheduled_rates(tmp_path):
    cfg = tiny_cfg(tmp_path / "run", steps=40, log_every=1, lr_g=1e-3, lr_d=5e-4, lr_decay="linear", lr_decay_start=0.5)
    train(cfg, dataset=tiny_data())
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    logged = {row["step"]: row["lr_g"] for row in rows if "lr_g" in row}
    # stats are logged after the step, so the row of step s holds the rate step s - 1 trained with
    assert logged[10] == pytest.approx(1e-3) and logged[20] == pytest.approx(1e-3)
    assert logged[31] == pytest.approx(1e-3 * (1 - 10 / 20))
    assert logged[40] == pytest.approx(1e-3 * (1 - 19 / 20))
    decaying = [logged[s] for s in range(21, 41)]
    assert all(a > b for a, b in zip(decaying, decaying[1:], strict=False))


@pytest.mark.parametrize(
    ("changes", "words"),
    [({"lr_decay": "step"}, "unknown lr_decay 'step'"), ({"lr_decay_start": 1.0}, "lr_decay_start")],
)
def test_bad_schedules_are_refused(changes, words):
    with pytest.raises(ConfigError, match=words):
        TrainConfig(**changes)
