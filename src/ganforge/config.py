"""Frozen configuration dataclasses and the named presets."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ganforge.errors import ConfigError

Arch = Literal["mlp", "dcgan"]
LossKind = Literal["nonsaturating", "minimax", "hinge"]
Device = Literal["auto", "cpu", "cuda"]

ARCHS = ("mlp", "dcgan")
LOSSES = ("nonsaturating", "minimax", "hinge")
DEVICES = ("auto", "cpu", "cuda")
DCGAN_SIZES = (28, 32, 64)


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild G and D; stored in every checkpoint and generator file."""

    arch: Arch = "mlp"
    image_size: int = 28
    channels: int = 1
    z_dim: int = 100
    width: int = 256  # MLP: hidden units; DCGAN: base channels
    num_classes: int = 0  # 0: unconditional
    out_activation: Literal["tanh", "none"] = "tanh"

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        for name in ("image_size", "channels", "z_dim", "width"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be positive; got {getattr(self, name)}")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be 0 (unconditional) or more; got {self.num_classes}")
        if self.arch == "dcgan" and self.image_size not in DCGAN_SIZES:
            sizes = ", ".join(map(str, DCGAN_SIZES))
            raise ConfigError(f"the dcgan arch takes image_size {sizes}; got {self.image_size}")
        if self.out_activation not in ("tanh", "none"):
            raise ConfigError(f"out_activation must be 'tanh' or 'none'; got {self.out_activation!r}")

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one sample: (C, H, W)."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def is_conditional(self) -> bool:
        return self.num_classes > 0


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: the model, the data and the run settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preset: str = "custom"
    data: str = "mnist"
    data_dir: str | None = None
    steps: int = 10_000
    batch_size: int = 128
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: LossKind = "nonsaturating"
    ema_decay: float = 0.0  # 0: no EMA of G
    seed: int = 0
    device: Device = "auto"
    out_dir: str = "runs/seed"
    log_every: int = 100
    checkpoint_every: int = 1_000
    sample_every: int = 1_000
    keep_checkpoints: int = 3
    eval_every: int = 0  # 0: no metrics during training

    def __post_init__(self) -> None:
        if self.steps <= 0:
            raise ConfigError(f"steps must be a positive number of training steps; got {self.steps}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch size must be positive; got {self.batch_size}")
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive; got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1); got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 turns EMA off); got {self.ema_decay}")
        if self.device not in DEVICES:
            raise ConfigError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)}")
        for name in ("log_every", "checkpoint_every", "sample_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (off) or a number of steps; got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints must be at least 1; got {self.keep_checkpoints}")

    @property
    def use_ema(self) -> bool:
        return self.ema_decay > 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> TrainConfig:
        """Rebuild a config from `to_dict()` output; unknown keys are an error."""
        values = dict(values)
        model = model_config_from_dict(values.pop("model", {}))
        _check_keys(cls, values, "train config")
        return cls(model=model, **values)


def model_config_from_dict(values: dict[str, Any]) -> ModelConfig:
    """Rebuild a ModelConfig from a dict (config.json, checkpoint or generator metadata)."""
    _check_keys(ModelConfig, values, "model config")
    return ModelConfig(**values)


def _check_keys(cls: type, values: dict[str, Any], what: str) -> None:
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown {what} keys {unknown}; known keys are {sorted(known)}")


PRESETS: dict[str, TrainConfig] = {
    # The article's MLP GAN, its bugs fixed: G 100 -> 256 -> 256 -> 784, D 784 -> 256 -> 256 -> 1.
    "seed": TrainConfig(
        model=ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=100, width=256),
        preset="seed",
        out_dir="runs/seed",
    ),
    # DCGAN (Radford et al. 2016) sized for a CPU: 32 base channels, EMA of G for sampling.
    "dcgan": TrainConfig(
        model=ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=64, width=32),
        preset="dcgan",
        batch_size=64,
        steps=10_000,
        lr_g=4e-4,
        lr_d=4e-4,
        ema_decay=0.999,
        out_dir="runs/dcgan",
    ),
    # 2-D ring of 8 Gaussians, for stability work: small MLPs with a linear output.
    "toy-ring": TrainConfig(
        model=ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=16, width=128, out_activation="none"),
        preset="toy-ring",
        data="toy:ring8",
        batch_size=256,
        steps=5_000,
        lr_g=1e-3,
        lr_d=1e-3,
        log_every=100,
        sample_every=0,
        checkpoint_every=1_000,
        out_dir="runs/toy-ring",
    ),
}


def get_preset(name: str) -> TrainConfig:
    """Look up a preset by name."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; use one of {', '.join(sorted(PRESETS))}")
    return PRESETS[name]
