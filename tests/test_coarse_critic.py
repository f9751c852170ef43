"""The coarse critic (ModelConfig.coarse_d): a second D logit from the image pooled to a few pixels a side."""

import json

import pytest
import torch
import torch.nn.functional as F

from ganforge import losses, regularizers
from ganforge.cli import main
from ganforge.config import ModelConfig, TrainConfig
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, main_logits, split_logits
from ganforge.train import build_state, train_step


def model(**changes):
    values = dict(arch="dcgan", image_size=28, channels=3, z_dim=8, width=4, coarse_d=7)
    return ModelConfig(**{**values, **changes})


def block_zero_mean(shape, block, seed=0):
    """Noise whose mean over every block x block tile is 0: invisible after average pooling by `block`."""
    noise = torch.randn(shape, generator=torch.Generator().manual_seed(seed))
    pooled = F.avg_pool2d(noise, block)
    return noise - F.interpolate(pooled, scale_factor=block, mode="nearest")


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_d_returns_the_main_and_the_coarse_logit(arch):
    cfg = model(arch=arch)
    D = build_discriminator(cfg)
    out = D(torch.randn(5, 3, 28, 28))
    assert out.shape == (5, 2)
    adv, classes = split_logits(out, cfg)
    assert adv is out and classes is None
    assert torch.equal(main_logits(adv), out[:, 0])
    without = build_discriminator(model(arch=arch, coarse_d=0))
    assert without(torch.randn(5, 3, 28, 28)).shape == (5,) and without.coarse is None


def test_the_coarse_logit_sees_only_the_pooled_image():
    torch.manual_seed(0)
    D = build_discriminator(model()).eval()  # eval: BatchNorm's running statistics, no batch mixing
    x = torch.rand(6, 3, 28, 28) * 2 - 1
    moved = x + 0.5 * block_zero_mean(x.shape, 4)  # 28 / 7 = 4: the same 7x7 pooled image
    with torch.no_grad():
        a, b = D(x), D(moved)
    assert torch.allclose(a[:, 1], b[:, 1], atol=1e-5)  # coarse: unchanged
    assert (a[:, 0] - b[:, 0]).abs().max() > 1e-3  # main: sees the strokes


def test_packed_samples_are_judged_together_by_both_critics():
    cfg = model(pac=2, minibatch_std=True)
    assert build_discriminator(cfg)(torch.randn(8, 3, 28, 28)).shape == (4, 2)


def test_bad_coarse_sides_are_refused_in_one_line():
    with pytest.raises(ConfigError, match="coarse_d is the side"):
        model(coarse_d=-1)
    with pytest.raises(ConfigError, match="coarse_d is the side"):
        model(coarse_d=29)
    with pytest.raises(ConfigError, match="2-D points"):
        ModelConfig(arch="mlp", image_size=1, channels=2, coarse_d=1)
    with pytest.raises(ConfigError, match="conditioning projection"):
        model(num_classes=3, conditioning="acgan")
    model(num_classes=3)  # a projection D takes one: its projection term joins the main logit


def test_each_critic_is_scored_as_its_own_discriminator():
    real, fake = torch.randn(16, 2), torch.randn(16, 2)
    for kind in ("nonsaturating", "hinge", "lsgan", "wgan", "ragan"):
        both = losses.d_loss(real, fake, kind=kind)
        each = [losses.d_loss(real[:, i], fake[:, i], kind=kind) for i in range(2)]
        assert torch.allclose(both, (each[0] + each[1]) / 2), kind
        g_both = losses.g_loss(fake, kind=kind, logits_real=real)
        g_each = [losses.g_loss(fake[:, i], kind=kind, logits_real=real[:, i]) for i in range(2)]
        assert torch.allclose(g_both, (g_each[0] + g_each[1]) / 2), kind
    weighted = losses.d_loss(real, fake, kind="nonsaturating", coarse_weight=3.0)
    each = [losses.d_loss(real[:, i], fake[:, i], kind="nonsaturating") for i in range(2)]
    assert torch.allclose(weighted, (each[0] + 3 * each[1]) / 2)
    weighted = losses.g_loss(fake, kind="nonsaturating", coarse_weight=3.0)
    each = [losses.g_loss(fake[:, i], kind="nonsaturating") for i in range(2)]
    assert torch.allclose(weighted, (each[0] + 3 * each[1]) / 2)


def test_r1_smooths_the_coarse_critic_too():
    torch.manual_seed(0)
    D = build_discriminator(model(minibatch_std=False))
    torch.nn.init.zeros_(D.head.weight)  # the main logit is a constant: only the coarse critic has a gradient
    real = torch.rand(4, 3, 28, 28) * 2 - 1
    penalty = regularizers.r1_penalty(D, real, None)
    assert penalty > 0
    penalty.backward()
    # The input gradient runs through every weight (LeakyReLU is piecewise linear: biases only pick the pieces).
    assert all(layer.weight.grad.abs().sum() > 0 for layer in D.coarse.net if isinstance(layer, torch.nn.Linear))


def test_a_training_step_trains_the_coarse_critic_and_logs_the_main_ds_view():
    cfg = TrainConfig(
        model=model(minibatch_std=True), data="tiny", batch_size=8, r1=1.0, reg_every=1, device="cpu", out_dir="x"
    )
    state = build_state(cfg, torch.device("cpu"))
    layers = [layer for layer in state.D.coarse.net if isinstance(layer, torch.nn.Linear)]
    before = [layer.weight.clone() for layer in layers]
    real = torch.rand(8, 3, 28, 28) * 2 - 1
    out = train_step(state, lambda: (real, None), cfg, with_stats=True)
    assert all(not torch.equal(w, layer.weight) for w, layer in zip(before, layers, strict=True))
    assert out["d_real"].dim() == 0 and 0 < out["d_real"] < 1 and torch.isfinite(out["loss_g"])


def test_the_cli_sets_it_and_the_stacked_mnist_preset_uses_it(capsys):
    assert main(["train", "--preset", "dcgan", "--coarse-d", "7", "--dry-run"]) == 0
    assert json.loads(capsys.readouterr().out)["model"]["coarse_d"] == 7
    assert main(["train", "--preset", "stacked-mnist", "--coarse-weight", "3", "--dry-run"]) == 0
    cfg = json.loads(capsys.readouterr().out)
    assert cfg["model"]["coarse_d"] == 7 and cfg["coarse_weight"] == 3
    with pytest.raises(ConfigError, match="coarse_weight"):
        TrainConfig(coarse_weight=0)
