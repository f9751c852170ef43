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
