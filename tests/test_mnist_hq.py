"""The mnist-hq preset: its recipe trains, and a short run already scores far better than an untrained G."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from ganforge import PRESETS, evaluate, load_generator, train
from ganforge.models import build_generator

STEPS = 300
N = 1_000  # samples scored; the reference is the MNIST test split, or mnist-sample offline


def test_mnist_hq_is_a_convolutional_mnist_recipe() -> None:
    cfg = PRESETS["mnist-hq"]
    assert cfg.preset == "mnist-hq"
    assert cfg.data == "mnist"
    assert cfg.model.arch == "dcgan"
    assert cfg.model.shape == (1, 28, 28)
    assert cfg.use_ema  # samples and the generator file come from the EMA of G
    assert cfg.model.num_classes == 10  # class-conditional: the digits' labels


def test_mnist_hq_short_run_beats_an_untrained_generator(tmp_path: Path) -> None:
    cfg = dataclasses.replace(
        PRESETS["mnist-hq"], data="mnist-sample", steps=STEPS, log_every=100, checkpoint_every=0, sample_every=0,
        check_every=0, device="cpu", out_dir=str(tmp_path / "run"), lr_decay="none",
    )  # fmt: skip
    # At a constant lr: the preset's decay runs over the second half of whatever the run's length is, so it would
    # spend half of these 300 steps slowing down (with it, seeds 0 and 1 scored a ratio of 0.136 and 0.151 and 3
    # and 2 classes, too close to the thresholds below).
    result = train(cfg)
    assert result.step == STEPS
    which = ["fid", "modes"]
    trained = evaluate(load_generator(result.run_dir), data="mnist-sample", n=N, metrics=which)
    torch.manual_seed(cfg.seed)
    untrained = evaluate(build_generator(cfg.model).eval(), data="mnist-sample", n=N, metrics=which)
    # Measured (300 steps, 1,000 samples against mnist-sample), seeds 0-2 with OMP_NUM_THREADS=1 and seed 0 with 2:
    # trained FID 23.7-27.3 against 203.1-203.9 untrained (ratio 0.116-0.134); classes confidently read 3-4
    # against 1. (Class match is still 0.12-0.13 at 300 steps, against 0.10 untrained: too early to assert on.)
    assert trained["fid"] < 0.25 * untrained["fid"], (trained["fid"], untrained["fid"])
    assert trained["modes_covered"] >= 2 > untrained["modes_covered"], (trained, untrained)
