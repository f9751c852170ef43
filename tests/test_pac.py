"""PacGAN packing (Lin et al. 2018): D judges k samples at once, stacked along the channels."""

import pytest
import torch

from ganforge import regularizers
from ganforge.cli import main
from ganforge.config import ModelConfig, TrainConfig
from ganforge.distributed import DistInfo, local_batch_size
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator

ARCHS = ["mlp", "dcgan", "resnet"]


def test_pack_stacks_each_run_of_k_samples_along_the_channels():
    D = build_discriminator(ModelConfig(arch="dcgan", image_size=28, channels=3, width=4, pac=2))
    x = torch.randn(6, 3, 28, 28)
    packed = D.pack(x)
    assert packed.shape == (3, 6, 28, 28)
    assert torch.equal(packed[1, :3], x[2]) and torch.equal(packed[1, 3:], x[3])
    with pytest.raises(ValueError, match="packs of 2"):
        D.pack(x[:5])
    unpacked = build_discriminator(ModelConfig(arch="dcgan", image_size=28, channels=3, width=4))
    assert unpacked.pack(x) is x


@pytest.mark.parametrize("arch", ARCHS)
def test_a_packed_d_gives_one_logit_a_pack_that_depends_on_every_sample_in_it(arch):
    torch.manual_seed(0)
    D = build_discriminator(ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, pac=2)).eval()
    x = torch.randn(8, 1, 28, 28)
    changed = x.clone()
    changed[3] = torch.randn(1, 28, 28)  # the second sample of pack 1
    with torch.no_grad():
        before, after = D(x), D(changed)
    assert before.shape == (4,)
    # Measured on seeds 0-2 (1 thread): the other packs move by exactly 0, the changed one by 1.5e-4 (dcgan) to 3.6.
    moved = (before - after).abs() > 1e-6
    assert moved.tolist() == [False, True, False, False]


def test_r1_on_a_packed_d_is_the_squared_norm_of_each_packs_gradient():
    w = torch.randn(2 * 5)  # a linear D on packs of two 5-feature samples: every pack's gradient is w
    D = lambda x, labels: x.reshape(len(x) // 2, -1) @ w  # noqa: E731
    real = torch.randn(6, 5)
    assert torch.allclose(regularizers.r1_penalty(D, real, None), w.square().sum())
    # The WGAN-GP norm is the pack's too: rescaling w to unit norm zeroes the penalty.
    unit = lambda x, labels: x.reshape(len(x) // 2, -1) @ (w / w.norm())  # noqa: E731
    assert regularizers.gradient_penalty(unit, real, torch.randn(6, 5), None) < 1e-10


@pytest.mark.parametrize(
    "build, field",
    [
        (lambda: ModelConfig(pac=0), "pac is the number"),
        (lambda: ModelConfig(pac=2, num_classes=10), "a conditional model \\(--num-classes\\) needs --pac 1"),
        (lambda: TrainConfig(model=ModelConfig(pac=4), batch_size=126), "batch size 126"),
    ],
)
def test_bad_packing_is_refused_at_config_time(build, field):
    with pytest.raises(ConfigError, match=field):
        build()


def test_cli_refuses_a_batch_that_does_not_divide_into_packs(tmp_path, capsys):
    code = main(["train", "--preset", "dcgan", "--pac", "3", "--out", str(tmp_path / "run"), "--steps", "2"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "--pac" in err and "batch size 64" in err
    assert not (tmp_path / "run").exists()


def test_each_process_must_get_whole_packs():
    info = DistInfo(rank=0, local_rank=0, world_size=2, backend="gloo")
    assert local_batch_size(8, info, pack=2) == 4
    with pytest.raises(ConfigError, match="batch size 6 does not divide by the 2 processes into packs of 2"):
        local_batch_size(6, info, pack=2)  # 3 images a process: no whole pairs
