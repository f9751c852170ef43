import hashlib

import pytest
import torch

from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, build_generator, needs_separate_batches, split_logits


def n_params(module):
    return sum(p.numel() for p in module.parameters())


def digest(module):
    """Keys, shapes and values of a state_dict, as a short hash."""
    h = hashlib.sha256()
    for k, v in module.state_dict().items():
        h.update(k.encode())
        h.update(v.float().numpy().tobytes())
    return h.hexdigest()[:16]


def test_seed_models_have_the_article_layers():
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert n_params(G) == (100 * 256 + 256) + (256 * 256 + 256) + (256 * 784 + 784)
    assert n_params(D) == (784 * 256 + 256) + (256 * 256 + 256) + (256 + 1)
    x = G(torch.randn(5, 100))
    assert x.shape == (5, 1, 28, 28) and x.min() >= -1 and x.max() <= 1
    assert D(x).shape == (5,)


# Digests of G and D built after torch.manual_seed(0) by the code before architectures and conditioning
# were added (commit f1d3b91): the default configs must keep their modules, keys, init and RNG use, so old
# generator files load and old runs reproduce.
_OLD_DIGESTS = {
    "mlp": (dict(arch="mlp", image_size=8, channels=1, z_dim=4, width=6), "d4bc6597de277de4", "6fdf8c612b1310db"),
    "mlp_cond": (
        dict(arch="mlp", image_size=8, channels=1, z_dim=4, width=6, num_classes=3),
        "f135d0f1e44c6a94",
        "0b6d000fad7a050d",
    ),
    "dcgan28": (
        dict(arch="dcgan", image_size=28, channels=1, z_dim=4, width=4),
        "7313c3f65d58ecf2",
        "cb154cef9cb00fb5",
    ),
    "dcgan32": (
        dict(arch="dcgan", image_size=32, channels=3, z_dim=4, width=4),
        "e6a5022d2cddc89c",
        "1ab7945930becdbe",
    ),
}


@pytest.mark.parametrize("name", sorted(_OLD_DIGESTS))
def test_default_models_are_unchanged(name):
    values, g_digest, d_digest = _OLD_DIGESTS[name]
    torch.manual_seed(0)
    G = build_generator(ModelConfig(**values))
    D = build_discriminator(ModelConfig(**values))
    assert (digest(G), digest(D)) == (g_digest, d_digest)


def test_conditional_dcgan_discriminator_keeps_its_keys():
    cfg = ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=4, width=4, num_classes=3)
    keys = list(build_discriminator(cfg).state_dict())
    assert keys[:2] == ["body.0.weight", "body.0.bias"] and keys[-3:] == [
        "head.weight",
        "head.bias",
        "projection.embed.weight",
    ]


CONDITIONS = [(0, "projection"), (3, "projection"), (3, "acgan")]


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
@pytest.mark.parametrize("size", [28, 32, 64])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("condition", CONDITIONS, ids=["uncond", "projection", "acgan"])
def test_shapes(arch, size, channels, condition):
    num_classes, conditioning = condition
    cfg = ModelConfig(
        arch=arch,
        image_size=size,
        channels=channels,
        z_dim=8,
        width=4,
        num_classes=num_classes,
        conditioning=conditioning,
    )
    G, D = build_generator(cfg), build_discriminator(cfg)
    labels = torch.tensor([0, 2, 1, 0]) if num_classes else None
    x = G(torch.randn(4, 8), labels)
    assert x.shape == (4, channels, size, size) and x.abs().max() <= 1
    out = D(x, labels)
    assert out.shape == ((4, 1 + num_classes) if cfg.is_acgan else (4,))
    out.sum().backward()  # every parameter of G is reached through D
    assert all(p.grad is not None for p in G.parameters())


@pytest.mark.parametrize("size", [28, 32, 64])
def test_dcgan_keeps_its_layers(size):
    cfg = ModelConfig(arch="dcgan", image_size=size, channels=3, z_dim=16, width=8)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in G.modules())
    assert any(isinstance(m, torch.nn.LeakyReLU) for m in D.modules())


def resnet_28_params(z_dim, w, channels, d_w):
    """ResNet parameter counts for 28x28 by hand: G 2w at 7x7, w at 14x14, w/2 at 28x28; D the mirror image."""

    def up(c_in, c_out):  # two BatchNorms, two 3x3 convs, a 1x1 shortcut
        return 2 * c_in + (9 * c_in * c_out + c_out) + 2 * c_out + (9 * c_out * c_out + c_out) + (c_in * c_out + c_out)

    def down(c_in, c_out):  # two 3x3 convs, a 1x1 shortcut (every block here changes shape)
        return (9 * c_in * c_out + c_out) + (9 * c_out * c_out + c_out) + (c_in * c_out + c_out)

    g = (z_dim + 1) * 2 * w * 49 + up(2 * w, w) + up(w, w // 2) + 2 * (w // 2) + (9 * (w // 2) * channels + channels)
    d = down(channels, d_w // 2) + down(d_w // 2, d_w) + down(d_w, 2 * d_w) + (2 * d_w + 1)
    return g, d


# Parameter counts on 28x28 greyscale, z_dim 64 (G / D): width 32: 241,569 / 74,545; width 64: 557,377 / 297,057
# (DCGAN preset, width 32: 234,177 / 36,577). 32x32 RGB, z_dim 128, width 64: 1,154,947 / 1,216,097.
@pytest.mark.parametrize("width", [4, 32])
def test_resnet_28_parameter_count(width):
    cfg = ModelConfig(arch="resnet", image_size=28, channels=1, z_dim=64, width=width)
    G, D = build_generator(cfg), build_discriminator(cfg)
    assert (n_params(G), n_params(D)) == resnet_28_params(64, width, 1, width)


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_discriminator_width_may_differ_from_the_generators(arch):
    same = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=16)
    quarter = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=16, d_width=4)
    assert n_params(build_generator(quarter)) == n_params(build_generator(same))
    assert n_params(build_discriminator(quarter)) < n_params(build_discriminator(same)) / 3
    first = next(m for m in build_discriminator(quarter).modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)))
    assert first.weight.shape[0] == (2 if arch == "resnet" else 4)  # resnet: d_width / 2 at full resolution


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_conditional_generators_use_labels(arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=8, num_classes=10)
    G, D = build_generator(cfg), build_discriminator(cfg).eval()
    G(torch.randn(16, 8), torch.arange(16) % 10)  # one train step's worth of BatchNorm statistics
    G.eval()
    with torch.no_grad():  # class-conditional BatchNorm starts as plain BatchNorm: give the classes their own gains
        for m in G.modules():
            if isinstance(m, torch.nn.Embedding):
                m.weight.normal_(1.0, 0.5)
    z = torch.randn(2, 8)
    a, b = G(z, torch.tensor([0, 0])), G(z, torch.tensor([1, 1]))
    assert not torch.allclose(a, b)
    assert D(a, torch.tensor([0, 0])).shape == (2,)
    with pytest.raises(ValueError):
        G(z)
    with pytest.raises(ValueError):
        D(a)


def test_conditional_conv_generators_use_conditional_batchnorm():
    from ganforge.models.conditioning import ConditionalBatchNorm2d

    for arch in ("dcgan", "resnet"):
        cfg = ModelConfig(arch=arch, image_size=32, channels=3, z_dim=8, width=4, num_classes=5)
        G = build_generator(cfg)
        assert any(isinstance(m, ConditionalBatchNorm2d) for m in G.modules())
        first = next(m for m in G.modules() if isinstance(m, (torch.nn.Linear, torch.nn.ConvTranspose2d)))
        z_dim_in = first.weight.shape[1] if arch == "resnet" else first.weight.shape[0]
        assert z_dim_in == 8  # z alone: the class enters through the BatchNorms, not a one-hot input


@pytest.mark.parametrize("arch", ["mlp", "dcgan", "resnet"])
def test_acgan_discriminator_has_a_class_head_and_takes_no_labels(arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, num_classes=7, conditioning="acgan")
    D = build_discriminator(cfg)
    assert cfg.is_acgan and D.projection is None
    out = D(torch.randn(3, 1, 28, 28))
    assert out.shape == (3, 8)
    adv, classes = split_logits(out)
    assert torch.equal(adv, out[:, 0]) and torch.equal(classes, out[:, 1:])


def test_split_logits_of_a_plain_discriminator():
    out = torch.randn(5)
    adv, classes = split_logits(out)
    assert adv is out and classes is None


CFGS_FOR_BATCHES = [
    (dict(arch="mlp"), False),
    (dict(arch="resnet"), False),
    (dict(arch="dcgan"), True),  # BatchNorm in D
    (dict(arch="dcgan", spectral_norm=True), False),  # SN's dcgan D has no BatchNorm
    (dict(arch="mlp", minibatch_std=True), True),
    (dict(arch="resnet", minibatch_std=True), True),
    (dict(arch="resnet", spectral_norm=True, num_classes=3), False),
]


@pytest.mark.parametrize("values, expected", CFGS_FOR_BATCHES)
def test_needs_separate_batches(values, expected):
    cfg = ModelConfig(image_size=28, channels=1, z_dim=8, width=4, **values)
    assert needs_separate_batches(cfg) == needs_separate_batches(build_discriminator(cfg)) == expected


def test_bad_model_config_is_a_config_error():
    with pytest.raises(ConfigError, match="image_size"):
        ModelConfig(arch="dcgan", image_size=30)
    with pytest.raises(ConfigError, match="image_size"):
        ModelConfig(arch="resnet", image_size=16)
    with pytest.raises(ConfigError, match="arch"):
        ModelConfig(arch="stylegan")
    with pytest.raises(ConfigError, match="width"):
        ModelConfig(width=0)
