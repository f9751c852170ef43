"""Mixed precision: autocast per precision, fp16's scaler (exact unscaled steps, skips on inf, checkpointed)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn

from ganforge import losses
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, build_generator
from ganforge.precision import MixedPrecision, has_native_bf16, resolve_precision

CPU = torch.device("cpu")


def _sgd_step(amp: MixedPrecision, seed: int = 0, poison: bool = False) -> nn.Linear:
    torch.manual_seed(seed)
    layer = nn.Linear(4, 3)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    loss = layer(torch.randn(8, 4)).square().mean()
    if poison:
        loss = loss * float("inf")
    amp.backward(loss)
    amp.step(opt)
    amp.update()
    return layer


@pytest.mark.parametrize(
    "precision,dtype", [("fp32", torch.float32), ("bf16", torch.bfloat16), ("fp16", torch.float16)]
)
def test_autocast_runs_matmuls_in_the_precision(precision: str, dtype: torch.dtype) -> None:
    amp = MixedPrecision(precision, CPU)
    layer = nn.Linear(4, 3)
    with amp.autocast():
        out = layer(torch.randn(2, 4))
    assert out.dtype == dtype
    assert layer.weight.dtype == torch.float32  # the weights themselves stay float32
    assert (amp.scaler is not None) == (precision == "fp16")


def test_fp16_scaler_steps_exactly_like_fp32() -> None:
    # The scale is a power of two, so scaling and unscaling a float32 gradient is exact.
    plain, scaled = _sgd_step(MixedPrecision("fp32", CPU)), _sgd_step(MixedPrecision("fp16", CPU))
    assert torch.equal(plain.weight, scaled.weight) and torch.equal(plain.bias, scaled.bias)


def test_fp16_skips_a_step_with_inf_gradients_and_backs_off() -> None:
    amp = MixedPrecision("fp16", CPU)
    scale = amp.state_dict()["scale"]
    torch.manual_seed(0)
    before = nn.Linear(4, 3).weight.detach().clone()
    after = _sgd_step(amp, poison=True)
    assert torch.equal(after.weight, before)
    assert amp.state_dict()["scale"] == scale / 2


def test_unscale_gives_true_gradients() -> None:
    amp = MixedPrecision("fp16", CPU)
    torch.manual_seed(0)
    layer = nn.Linear(4, 3)
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    x = torch.randn(8, 4)
    expected = torch.autograd.grad(layer(x).square().mean(), layer.weight)[0]
    amp.backward(layer(x).square().mean())
    amp.unscale(opt)
    assert torch.equal(layer.weight.grad, expected)


def test_scaler_state_round_trips_through_a_checkpoint() -> None:
    amp = MixedPrecision("fp16", CPU)
    _sgd_step(amp, poison=True)  # scale halves: not the default any more
    buffer = io.BytesIO()
    torch.save({"scaler": amp.state_dict()}, buffer)
    buffer.seek(0)
    restored = MixedPrecision("fp16", CPU)
    restored.load_state_dict(torch.load(buffer, weights_only=True)["scaler"])
    assert restored.state_dict() == amp.state_dict()
    assert MixedPrecision("fp32", CPU).state_dict() == {}


@pytest.mark.parametrize("arch", ["mlp", "dcgan"])
def test_bf16_gan_step_gives_finite_float32_gradients(arch: str) -> None:
    cfg = ModelConfig(arch=arch, image_size=28, channels=1, z_dim=8, width=8)
    amp = MixedPrecision("bf16", CPU)
    torch.manual_seed(0)
    G, D = build_generator(cfg), build_discriminator(cfg)
    with amp.autocast():
        logits = D(G(torch.randn(4, cfg.z_dim)))
    assert logits.dtype == torch.bfloat16
    amp.backward(losses.g_loss(logits.float(), kind="nonsaturating"))
    grads = [p.grad for p in G.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


def test_unknown_precision() -> None:
    with pytest.raises(ConfigError, match=r"unknown precision 'fp8'; use one of fp32, bf16, fp16"):
        MixedPrecision("fp8", CPU)


def test_native_bf16_from_flags() -> None:
    assert has_native_bf16({"avx2", "amx_bf16"}) and has_native_bf16({"avx512_bf16"})
    assert not has_native_bf16({"avx2", "avx512f"})


def test_auto_precision_is_bf16_for_conv_models_on_a_cpu_with_native_bf16() -> None:
    assert resolve_precision("auto", CPU, conv=True, flags={"avx512f", "amx_bf16"}) == "bf16"
    assert resolve_precision("auto", CPU, conv=True, flags={"avx512f", "avx512_bf16"}) == "bf16"
    assert resolve_precision("auto", CPU, conv=True, flags={"avx2", "avx512f"}) == "fp32"
    assert resolve_precision("auto", CPU, conv=False, flags={"amx_bf16"}) == "fp32"  # MLPs: quality unmeasured
    assert resolve_precision("auto", torch.device("cuda"), conv=True, flags={"amx_bf16"}) == "fp32"
    assert resolve_precision("fp16", CPU, conv=True, flags=set()) == "fp16"


@pytest.mark.parametrize(("flags", "arch", "expected"), [
    ({"avx512_bf16"}, "dcgan", ("bf16", True)),
    ({"avx2"}, "dcgan", ("fp32", False)),
    ({"avx512_bf16"}, "mlp", ("fp32", False)),
])  # fmt: skip
def test_a_run_records_what_auto_resolved_to(tmp_path, monkeypatch, caplog, flags, arch, expected) -> None:
    import dataclasses
    import json

    from test_train import tiny_cfg, tiny_data

    from ganforge import precision
    from ganforge.config import ModelConfig
    from ganforge.train import train

    monkeypatch.setattr(precision, "cpu_flags", lambda: flags)
    size = 28 if arch == "dcgan" else 8
    cfg = tiny_cfg(tmp_path / "run", steps=2, precision="auto", check_every=0)
    cfg = dataclasses.replace(cfg, model=ModelConfig(arch=arch, image_size=size, channels=1, z_dim=8, width=4))
    with caplog.at_level("INFO", logger="ganforge"):
        train(cfg, dataset=tiny_data(n=32, size=size))
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert (saved["precision"], saved["channels_last"]) == expected
    said = [r.getMessage() for r in caplog.records if "precision auto" in r.getMessage()]
    assert len(said) == (1 if expected[0] == "bf16" else 0)
    if said:
        assert "avx512_bf16" in said[0] and "--precision fp32" in said[0]
