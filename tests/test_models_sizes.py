"""The conv archs at every size they take: 28, 32 ... 256; the sizes they took before build the same networks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from ganforge.config import CONV_SIZES, ModelConfig
from ganforge.models import build_discriminator, build_generator

FINGERPRINTS = Path(__file__).parent / "data" / "conv_models_28_32_64.json"
# The configurations fingerprinted from main's models before 128 and 256 were added (arch, size, channels,
# classes, variant): a generator trained then must load and sample the same, and seeded tests draw the same.
OLD_CONFIGS = [
    (arch, size, channels, classes, variant)
    for arch in ("dcgan", "resnet")
    for size in (28, 32, 64)
    for channels, classes, variant in ((1, 0, "plain"), (3, 10, "sn_mbstd"), (3, 0, "d_width"), (1, 10, "plain"))
]


def _config(arch: str, size: int, channels: int, classes: int, variant: str) -> ModelConfig:
    kw: dict = dict(arch=arch, image_size=size, channels=channels, num_classes=classes, width=8, z_dim=16)
    if variant == "sn_mbstd":
        kw.update(spectral_norm=True, minibatch_std=True)
    if variant == "d_width":
        kw.update(width=12, d_width=6)
    return ModelConfig(**kw)


def fingerprint(cfg: ModelConfig) -> dict[str, list]:
    """Each tensor of a seeded G and D: shape, first value, sum and sum of squares (float64)."""
    torch.manual_seed(0)
    nets = {"G": build_generator(cfg), "D": build_discriminator(cfg)}
    out = {}
    for name, net in nets.items():
        for key, value in net.state_dict().items():
            v = value.double()
            first = v.flatten()[0].item() if v.numel() else 0.0
            out[f"{name}.{key}"] = [list(v.shape), first, v.sum().item(), v.square().sum().item()]
    return out


def test_old_sizes_build_the_same_networks() -> None:
    recorded = json.loads(FINGERPRINTS.read_text())
    assert len(recorded) == len(OLD_CONFIGS)
    for spec in OLD_CONFIGS:
        key = "-".join(map(str, spec))
        now, then = fingerprint(_config(*spec)), recorded[key]
        assert list(now) == list(then), key  # same tensors, same order
        for name, (shape, first, total, squares) in then.items():
            assert now[name][0] == shape, (key, name)
            assert now[name][1:] == pytest.approx([first, total, squares], rel=1e-5, abs=1e-6), (key, name)


def _tiny_data(n: int, channels: int, size: int, classes: int):
    from ganforge.data import Dataset

    rng = torch.Generator().manual_seed(1)
    images = torch.randint(0, 256, (n, channels, size, size), dtype=torch.uint8, generator=rng)
    labels = torch.arange(n) % classes if classes else None
    return Dataset("tiny", "tiny", images, labels, classes, "train", "test fixture")


# Each size once per arch, with channels and conditioning alternating so both kinds of each are covered.
SIZE_CASES = [
    (arch, size, 1 + 2 * ((i + j) % 2), 3 * ((i + j + 1) % 2))
    for i, arch in enumerate(("dcgan", "resnet"))
    for j, size in enumerate(CONV_SIZES)
]


@pytest.mark.parametrize(("arch", "size", "channels", "classes"), SIZE_CASES)
def test_every_size_trains_samples_and_is_known_to_the_checkpoint(tmp_path, arch, size, channels, classes):
    from ganforge.checkpoint import load_generator
    from ganforge.config import TrainConfig
    from ganforge.sample import sample
    from ganforge.train import train

    width = 4 if size >= 128 else 8
    model = ModelConfig(arch=arch, image_size=size, channels=channels, z_dim=8, width=width, num_classes=classes)
    cfg = TrainConfig(
        model=model,
        data="tiny",
        steps=2,
        batch_size=2,
        log_every=1,
        checkpoint_every=2,
        sample_every=0,
        check_every=0,
        device="cpu",
        precision="fp32",
        out_dir=str(tmp_path / "run"),
    )
    result = train(cfg, dataset=_tiny_data(4, channels, size, classes))
    assert result.step == 2 and all(torch.isfinite(torch.tensor(v)) for v in result.final.values())
    G = load_generator(result.generator_path)
    assert (G.cfg.image_size, G.cfg.channels, G.cfg.num_classes) == (size, channels, classes)
    images = sample(G, 2, seed=0)
    assert images.shape == (2, channels, size, size) and images.abs().max() <= 1


@pytest.mark.parametrize("arch", ["dcgan", "resnet"])
def test_widths_halve_with_resolution_to_a_floor(arch):
    from ganforge.models.dcgan import WIDTH_FLOOR

    # the finest hidden level's channels: dcgan's is width at 64 px, resnet's width / 2; one halving per
    # doubling beyond, then held at the floor
    finest = {"dcgan": {64: 64, 128: 32, 256: WIDTH_FLOOR}, "resnet": {64: 32, 128: WIDTH_FLOOR, 256: WIDTH_FLOOR}}
    for size, fewest in finest[arch].items():
        G = build_generator(ModelConfig(arch=arch, image_size=size, channels=3, z_dim=8, width=64))
        convs = [m for m in G.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d))]
        # 8 x width at 4x4 at every size from 64 up: the top does not grow with the size
        top = convs[0].out_channels if arch == "dcgan" else G.linear.out_features // 16
        assert top == 512
        hidden = [c.out_channels for c in convs if c.out_channels != 3]
        assert min(hidden) == fewest, (size, hidden)
    # once the widths reach the floor, an added block costs little
    small = sum(p.numel() for p in build_generator(ModelConfig(arch=arch, image_size=128, width=64)).parameters())
    large = sum(p.numel() for p in build_generator(ModelConfig(arch=arch, image_size=256, width=64)).parameters())
    assert small < large < small * 1.1


def test_other_sizes_are_refused_naming_the_sizes():
    from ganforge.errors import ConfigError

    for size in (16, 48, 96, 512):
        with pytest.raises(ConfigError, match="28, 32, 64, 128, 256"):
            ModelConfig(arch="dcgan", image_size=size)


def test_the_server_reports_the_size():
    pytest.importorskip("fastapi")
    from fastapi.testclient import TestClient

    from ganforge.serve.app import make_app

    G = build_generator(ModelConfig(arch="dcgan", image_size=128, channels=3, z_dim=8, width=4))
    with TestClient(make_app(G)) as client:
        info = client.get("/v1/model").json()
        assert (info["image_size"], info["config"]["image_size"]) == (128, 128)
        response = client.post("/v1/generate", json={"n": 1, "seed": 3, "format": "grid"})
        assert response.status_code == 200
