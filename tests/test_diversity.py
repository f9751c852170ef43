import dataclasses

import pytest
import torch

from ganforge.cli import main
from ganforge.config import ModelConfig, TrainConfig
from ganforge.diversity import mode_seeking_loss, same_label_pairs
from ganforge.errors import ConfigError
from ganforge.train import build_state, train_step


def test_pairs_share_a_label_and_no_sample_is_used_twice():
    labels = torch.tensor([2, 0, 1, 0, 2, 2, 1, 3, 3, 3, 0])
    a, b = same_label_pairs(labels, len(labels))
    assert len(a) == 4  # one pair from each label's 2 or 3 samples; none across labels
    assert torch.equal(labels[a], labels[b])
    used = torch.cat([a, b])
    assert len(set(used.tolist())) == len(used)


def test_unlabelled_pairs_are_the_two_halves():
    a, b = same_label_pairs(None, 7)
    assert a.tolist() == [0, 1, 2] and b.tolist() == [3, 4, 5]


def test_the_term_falls_as_same_label_samples_move_apart_and_its_gradient_pushes_them_apart():
    z = torch.randn(8, 4)
    labels = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    near = torch.zeros(8, 3, 4, 4) + 0.01 * torch.randn(8, 3, 4, 4)
    far = near + torch.tensor([0.5, -0.5] * 4).view(8, 1, 1, 1)  # each pair pushed apart
    assert mode_seeking_loss(far, z, labels) < mode_seeking_loss(near, z, labels)
    fake = near.clone().requires_grad_(True)
    mode_seeking_loss(fake, z, labels).backward()
    with torch.no_grad():
        stepped = fake - 0.01 * fake.grad / fake.grad.abs().max()
    a, b = same_label_pairs(labels, 8)
    assert (stepped[a] - stepped[b]).abs().mean() > (near[a] - near[b]).abs().mean()


def test_no_pair_no_term():
    fake, z = torch.randn(3, 1, 4, 4, requires_grad=True), torch.randn(3, 2)
    assert mode_seeking_loss(fake, z, torch.tensor([0, 1, 2])) == 0


def _cfg(**changes):
    cfg = TrainConfig(
        model=ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=8, width=16, num_classes=2),
        data="tiny",
        steps=4,
        batch_size=16,
        device="cpu",
    )
    return dataclasses.replace(cfg, **changes)


def test_a_step_with_mode_seeking_logs_it_beside_the_adversarial_loss_and_moves_g_differently():
    real, labels = torch.rand(16, 1, 8, 8) * 2 - 1, torch.arange(16) % 2
    outs, weights = [], []
    for weight in (0.0, 1.0):
        cfg = _cfg(mode_seeking=weight)
        torch.manual_seed(0)
        state = build_state(cfg, torch.device("cpu"))
        outs.append(train_step(state, lambda: (real, labels), cfg, with_stats=True))
        weights.append([p.detach().clone() for p in state.G.parameters()])
    assert "mode_seeking" not in outs[0] and outs[1]["mode_seeking"] > 0
    assert torch.allclose(outs[0]["loss_g"], outs[1]["loss_g"])  # the logged loss_g is the adversarial one
    assert any(not torch.equal(a, b) for a, b in zip(*weights, strict=True))


def test_a_negative_weight_is_refused_and_the_cli_sets_it(tmp_path, capsys):
    with pytest.raises(ConfigError, match="mode_seeking"):
        _cfg(mode_seeking=-1.0)
    rc = main(["train", "--preset", "seed", "--mode-seeking", "0.5", "--dry-run", "--out", str(tmp_path / "r")])
    assert rc == 0
    assert '"mode_seeking": 0.5' in capsys.readouterr().out
