"""What the emoji-64 preset needs besides the data: a conditional G drawn in its data's class mix at eval time, and a
training-split reference (the real-emoji run of the preset is in test_data_emoji.py, which renders the set once)."""

import dataclasses
from collections import Counter

import pytest
import torch
from test_train import tiny_cfg, tiny_data

from ganforge.checkpoint import load_generator
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.metrics import evaluate
from ganforge.metrics.reference import load_reference
from ganforge.models import build_generator
from ganforge.presets import PRESETS
from ganforge.sample import data_labels
from ganforge.train import train


def _conditional_G(counts=None):
    G = build_generator(ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=4, width=8, num_classes=len(counts)))
    G.provenance = {"class_counts": counts}
    return G


def test_eval_labels_follow_the_recorded_class_mix_within_one_and_are_spread_out():
    counts = [149, 1931, 137, 120, 196, 77, 235, 201, 242]  # the emoji training split's groups
    G = _conditional_G(counts)
    for n in (1, 9, 100, 2_000, 10_000):
        labels = data_labels(G, n)
        got = Counter(labels.tolist())
        for k, c in enumerate(counts):
            assert abs(got[k] - n * c / sum(counts)) <= 1.0 + 1e-9, (n, k, got[k])
    # Any stretch of 100 samples holds several classes, not one class's run.
    labels = data_labels(G, 2_000)
    assert min(len(set(labels[i : i + 100].tolist())) for i in range(0, 1_900, 100)) >= 6
    assert torch.equal(data_labels(G, 500), data_labels(G, 500))


def test_without_recorded_counts_eval_labels_cycle_as_before():
    G = _conditional_G([0] * 3)
    assert data_labels(G, 7).tolist() == [0, 1, 2, 0, 1, 2, 0]
    G.provenance = {}
    assert data_labels(G, 4).tolist() == [0, 1, 2, 0]
    unconditional = build_generator(ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=4, width=8))
    assert data_labels(unconditional, 5) is None


def test_training_records_the_class_mix_and_eval_draws_by_it(tmp_path):
    data = tiny_data(n=120, classes=3)
    data = dataclasses.replace(data, labels=torch.tensor([0] * 80 + [1] * 30 + [2] * 10))
    cfg = tiny_cfg(tmp_path / "run", steps=2, model=ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8,
                   width=16, num_classes=3), check_every=0, sample_every=0, eval_every=2)  # fmt: skip
    seen = []  # evaluations during training draw the classes as the finished run's eval does
    train(cfg, dataset=data, evaluator=lambda G: seen.append(Counter(data_labels(G, 12).tolist())) or {})
    G = load_generator(tmp_path / "run")
    assert G.provenance["class_counts"] == [80, 30, 10]
    assert Counter(data_labels(G, 120).tolist()) == {0: 80, 1: 30, 2: 10}
    assert seen == [{0: 8, 1: 3, 2: 1}]


def test_the_reference_split_can_be_the_training_split():
    test, train_ref = load_reference("toy:ring8"), load_reference("toy:ring8", split="train")
    assert (test.split, train_ref.split) == ("test", "train")
    assert test.content_hash != train_ref.content_hash
    with pytest.raises(ConfigError, match="unknown reference split 'val'"):
        load_reference("toy:ring8", split="val")


def test_folders_have_no_training_split_to_score_against(tmp_path):
    with pytest.raises(ConfigError, match="has no training split"):
        load_reference(f"folder:{tmp_path}", split="train")
    with pytest.raises(ConfigError, match="has no training split"):
        evaluate(images=torch.zeros(40, 3, 32, 32), data=f"folder:{tmp_path}", reference_split="train")


def test_emoji_64_is_a_64_px_rgb_preset_of_the_stability_toolkit():
    cfg = PRESETS["emoji-64"]
    assert cfg.data == "emoji" and cfg.model.image_size == 64 and cfg.model.channels == 3
    assert cfg.model.num_classes == 9 and cfg.class_balance > 0 and cfg.r1 > 0 and cfg.use_ema


def test_emoji_64_trains_unconditional_with_num_classes_0_and_its_balance_dropped(capsys):
    from ganforge.cli import main

    assert main(["train", "--preset", "emoji-64", "--num-classes", "0", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert '"num_classes": 0' in out and '"class_balance": 0.0' in out
    assert main(["train", "--preset", "emoji-64", "--num-classes", "0", "--class-balance", "0.5", "--dry-run"]) == 2
    assert "drop --class-balance" in capsys.readouterr().err
