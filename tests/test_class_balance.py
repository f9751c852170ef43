"""Class-balanced batches (`--class-balance`): the classes' shares, no repeats before a class is used up, resume."""

from __future__ import annotations

import pytest
import torch

from ganforge.batches import Batches, balanced_order
from ganforge.config import ModelConfig, TrainConfig
from ganforge.data import Dataset
from ganforge.errors import ConfigError

# 90 images of class 0, 10 of class 1, 0 of class 2 (an empty class is never drawn), 20 of class 3
LABELS = torch.tensor([0] * 90 + [1] * 10 + [3] * 20)


def _shares(order: torch.Tensor) -> list[int]:
    return torch.bincount(LABELS[order], minlength=4).tolist()


def test_the_balance_sets_each_class_share_by_a_power_of_its_count():
    rng = torch.Generator().manual_seed(0)
    assert _shares(balanced_order(LABELS, 0.0, rng)) == [90, 10, 0, 20]  # the data's mix, every image once
    assert _shares(balanced_order(LABELS, 1.0, rng)) == [40, 40, 0, 40]  # every class equally often
    half = _shares(balanced_order(LABELS, 0.5, rng))  # by the square root of the counts: 9.5 : 3.2 : 4.5
    assert half[0] > half[3] > half[1] > 10 and sum(half) == pytest.approx(120, abs=2)


def test_a_small_class_repeats_only_after_all_its_images_were_drawn():
    order = balanced_order(LABELS, 1.0, torch.Generator().manual_seed(1))
    draws = torch.bincount(order, minlength=len(LABELS))
    for c, size in ((0, 90), (1, 10), (3, 20)):
        mine = draws[LABELS == c]
        assert len(mine) == size and mine.max() - mine.min() <= 1  # 40 draws of 10 images: each exactly 4 times
    assert (draws[LABELS == 1] == 4).all() and (draws[LABELS == 3] == 2).all()
    assert (draws[LABELS == 0] <= 1).all() and int(draws[LABELS == 0].sum()) == 40  # a large class is subsampled


def _dataset() -> Dataset:
    images = torch.arange(len(LABELS), dtype=torch.uint8)[:, None, None, None].expand(-1, 1, 4, 4).contiguous()
    return Dataset("tiny", "tiny", images, LABELS.clone(), 4, "train", "test fixture")


def test_balanced_batches_resume_exactly_and_differ_by_epoch_and_seed():
    cpu = torch.device("cpu")
    a = Batches(_dataset(), 16, seed=5, device=cpu, class_balance=1.0)
    seen = [a.next()[1] for _ in range(7)]  # 7 steps of 16: past the first epoch (120 draws, 7 full batches)
    assert torch.bincount(torch.cat(seen), minlength=4)[[0, 1, 3]].min() >= 30  # about 40 of each, none starved
    position = a.position()
    ahead = [a.next() for _ in range(10)]
    b = Batches(_dataset(), 16, seed=5, device=cpu, class_balance=1.0)
    b.restore(position)
    for (x, y), (x2, y2) in zip(ahead, [b.next() for _ in range(10)], strict=True):
        assert torch.equal(x, x2) and torch.equal(y, y2)
    other = Batches(_dataset(), 16, seed=6, device=cpu, class_balance=1.0)
    assert not torch.equal(other.next()[1], Batches(_dataset(), 16, seed=5, device=cpu, class_balance=1.0).next()[1])


def test_class_balance_needs_a_conditional_model_and_a_share_in_0_1():
    conditional = ModelConfig(arch="dcgan", image_size=32, channels=1, z_dim=8, width=4, num_classes=4)
    TrainConfig(model=conditional, class_balance=0.5)
    with pytest.raises(ConfigError, match="unconditional"):
        TrainConfig(model=ModelConfig(arch="dcgan", image_size=32, channels=1, z_dim=8, width=4), class_balance=1.0)
    with pytest.raises(ConfigError, match=r"class_balance must be in \[0, 1\]"):
        TrainConfig(model=conditional, class_balance=1.5)
    with pytest.raises(ValueError, match="labelled"):
        data = _dataset()
        data.labels = None
        Batches(data, 8, seed=0, device=torch.device("cpu"), class_balance=1.0)


def test_the_cli_passes_class_balance_to_the_config(capsys):
    from ganforge.cli import main

    code = main(["train", "--preset", "emoji-64", "--class-balance", "0.5", "--dry-run"])
    assert code in (0, None) and '"class_balance": 0.5' in capsys.readouterr().out
    assert main(["train", "--preset", "dcgan", "--class-balance", "1", "--dry-run"]) == 2
    assert "unconditional: set --num-classes or drop --class-balance" in capsys.readouterr().err
