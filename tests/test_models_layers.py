import pytest
import torch

from ganforge import checkpoint
from ganforge.config import ModelConfig
from ganforge.models import build_discriminator, build_generator
from ganforge.models.conditioning import ConditionalBatchNorm2d
from ganforge.models.layers import MinibatchStd, apply_spectral_norm

ARCHS = ["mlp", "dcgan", "resnet"]


def sn_layers(module):
    return [m for m in module.modules() if hasattr(m, "parametrizations")]


def largest_singular_value(layer):
    weight = layer.weight  # the normalized weight, computed from `original`, `_u` and `_v`
    if isinstance(layer, torch.nn.ConvTranspose2d):
        weight = weight.transpose(0, 1)  # torch normalizes ConvTranspose weights along dim 1
    return torch.linalg.matrix_norm(weight.flatten(1), ord=2).item()


def test_spectral_norm_bounds_the_largest_singular_value():
    torch.manual_seed(0)
    layers = torch.nn.Sequential(torch.nn.Linear(30, 20), torch.nn.Conv2d(3, 8, 3), torch.nn.ConvTranspose2d(8, 4, 4))
    with torch.no_grad():
        for p in layers.parameters():
            p.mul_(10)
    before = [largest_singular_value(m) for m in layers]
    apply_spectral_norm(layers, embeddings=False)
    for _ in range(20):  # each train-mode access runs one power iteration (15 more ran at registration)
        after = [largest_singular_value(m) for m in layers]
    # The estimate of sigma approaches it from below, so the normalized value approaches 1 from above; over
    # seeds 0-5 the worst after 20 accesses was 1.028 (seed 0's conv, whose top two singular values are close).
    assert min(before) > 3
    assert after == pytest.approx([1.0] * 3, abs=0.05)


@pytest.mark.parametrize("arch", ARCHS)
def test_spectral_norm_covers_every_conv_and_linear_layer(arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, num_classes=3)
    kinds = (torch.nn.Linear, torch.nn.Conv2d, torch.nn.ConvTranspose2d)
    for build, flag in ((build_discriminator, "spectral_norm"), (build_generator, "spectral_norm_g")):
        plain = build(cfg)
        normalized = build(ModelConfig(**{**cfg.__dict__, flag: True}))
        expected = sum(isinstance(m, kinds) for m in plain.modules())
        if build is build_discriminator:
            expected += 1  # the projection head's class embedding
        assert len(sn_layers(normalized)) == expected > 0
        assert not sn_layers(plain)


@pytest.mark.parametrize("arch", ARCHS)
def test_spectral_norm_state_round_trip_is_exact_in_train_mode(arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, num_classes=3, spectral_norm=True)
    x, labels = torch.randn(4, 1, 28, 28), torch.tensor([0, 1, 2, 0])
    torch.manual_seed(0)
    D = build_discriminator(cfg)
    for _ in range(3):  # the power-iteration vectors move away from their initial values
        D(x, labels)
    state = {k: v.clone() for k, v in D.state_dict().items()}
    assert any(k.endswith("._u") for k in state) and any(k.endswith("._v") for k in state)

    torch.manual_seed(1)
    restored = build_discriminator(cfg)
    restored.load_state_dict(state)
    for _ in range(2):  # train mode: each forward updates u and v again, in both copies alike
        assert torch.equal(restored(x, labels), D(x, labels))
    assert all(torch.equal(a, b) for a, b in zip(restored.state_dict().values(), D.state_dict().values(), strict=True))

    # Without the vectors the outputs differ: they are what makes the round trip exact.
    weights_only, full = build_discriminator(cfg), build_discriminator(cfg)
    weights_only.load_state_dict({k: v for k, v in state.items() if not k.endswith(("._u", "._v"))}, strict=False)
    full.load_state_dict(state)
    assert not torch.equal(weights_only(x, labels), full(x, labels))


@pytest.mark.parametrize("arch", ARCHS)
def test_generator_file_with_spectral_norm_loads(tmp_path, arch):
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, num_classes=3, spectral_norm_g=True)
    G = build_generator(cfg)
    z, labels = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    G(z, labels)  # moves u, v and the BatchNorm statistics
    G.eval()
    checkpoint.save_generator(tmp_path / "g.safetensors", G, cfg, {"preset": "test"})
    loaded = checkpoint.load_generator(tmp_path / "g.safetensors")
    assert torch.equal(loaded(z, labels), G(z, labels))


def test_minibatch_std_appends_the_groups_spread():
    layer = MinibatchStd(group_size=4)
    x = torch.randn(8, 3, 5, 5)
    x[:4] = x[0]  # the first group has collapsed onto one sample
    out = layer(x)
    assert out.shape == (8, 4, 5, 5) and torch.equal(out[:, :3], x)
    assert out[:4, 3].max() < 1e-3 and out[4:, 3].min() > 0.5  # randn: std near 1
    expected = x[4:].var(dim=0, unbiased=False).add(1e-8).sqrt().mean()
    assert torch.allclose(out[4:, 3], expected.expand(4, 5, 5))
    assert MinibatchStd()(torch.randn(6, 10)).shape == (6, 11)  # 6 is no multiple of 4: the whole batch is one group


@pytest.mark.parametrize("arch", ARCHS)
def test_minibatch_std_lets_d_see_the_batchs_diversity(arch):
    torch.manual_seed(0)
    x = torch.randn(4, 1, 28, 28)
    collapsed = x[:1].expand(4, -1, -1, -1)
    for minibatch_std in (False, True):
        cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=4, minibatch_std=minibatch_std)
        D = build_discriminator(cfg).eval()  # eval: dcgan's BatchNorm uses running statistics
        with torch.no_grad():
            changed = not torch.allclose(D(x)[0], D(collapsed)[0], atol=1e-6)
        assert changed == minibatch_std


def test_conditional_batchnorm_is_batchnorm_with_per_class_gain_and_bias():
    layer = ConditionalBatchNorm2d(3, num_classes=2)
    with torch.no_grad():
        layer.gain.weight.copy_(torch.tensor([[1.0, 2.0, 3.0], [0.5, 0.5, 0.5]]))
        layer.bias.weight.copy_(torch.tensor([[0.0, 1.0, 0.0], [-1.0, 0.0, 1.0]]))
    x, labels = torch.randn(6, 3, 4, 4), torch.tensor([0, 1, 0, 1, 1, 0])
    plain = torch.nn.functional.batch_norm(x, None, None, training=True)
    gain, bias = layer.gain.weight[labels], layer.bias.weight[labels]
    assert torch.allclose(layer(x, labels), plain * gain[:, :, None, None] + bias[:, :, None, None], atol=1e-6)
