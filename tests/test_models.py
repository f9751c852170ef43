import pytest
import torch

from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, build_generator


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def test_seed_models_have_the_article_layers():
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert n_params(G) == (100 * 256 + 256) + (256 * 256 + 256) + (256 * 784 + 784)
    assert n_params(D) == (784 * 256 + 256) + (256 * 256 + 256) + (256 + 1)
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)


@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
def test_dcgan_shapes(size, channels):
    cfg = ModelConfig(arch="dcgan", image_size=size, channels=channels, z_dim=16, width=8)
    G, D = build_generator(cfg), build_discriminator(cfg)
    x = G(torch.randn(4, 16))
    assert x.shape == (4, channels, size, size)
    assert D(x).shape == (4,)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in D.modules())


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_conditional_models_use_labels(arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=8, num_classes=10)
    G, D = build_generator(cfg).eval(), build_discriminator(cfg).eval()
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    assert D(a, torch.tensor([0, 0])).shape == (2,)
    with pytest.raises(ValueError):
        G(z)


def test_bad_model_config_is_a_config_error():
    with pytest.raises(ConfigError, match="image_size"):
        ModelConfig(arch="dcgan", image_size=30)
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="resnet")
    with pytest.raises(ConfigError, match="width"):
        ModelConfig(width=0)
