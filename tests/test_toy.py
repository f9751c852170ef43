"""Stability on 2-D mixtures: the toy-ring preset must find the ring's modes."""

import dataclasses

import pytest

from ganforge import PRESETS, load_generator, sample, train
from ganforge.data import toy_modes
from ganforge.metrics.toy import toy_metrics


def test_toy_ring_preset_learns_something_quickly(tmp_path):
    cfg = dataclasses.replace(PRESETS["toy-ring"], steps=300, out_dir=str(tmp_path / "ring"), device="cpu")
    train(cfg)
    points = sample(load_generator(tmp_path / "ring"), 2000, seed=0)
    assert points.shape == (2000, 2, 1, 1)
    radius = points.flatten(1).norm(dim=1)
    assert 1.0 < radius.median() < 3.0  # on its way to the radius-2 ring, not stuck at the origin


@pytest.mark.slow
def test_toy_ring_preset_covers_the_modes(tmp_path):
    train(dataclasses.replace(PRESETS["toy-ring"], out_dir=str(tmp_path / "ring"), device="cpu"))
    centers, std = toy_modes("ring8")
    scores = toy_metrics(sample(load_generator(tmp_path / "ring"), 2000, seed=0), centers, std)
    assert scores["modes_covered"] >= 7, scores
    assert scores["high_quality"] > 0.5, scores
