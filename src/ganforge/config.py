"""Frozen configuration dataclasses: ModelConfig and TrainConfig, checked when built (presets are in presets.py)."""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from ganforge.errors import ConfigError

Arch = Literal["mlp", "dcgan", "resnet"]
LossKind = Literal["nonsaturating", "minimax", "hinge", "lsgan", "wgan", "ragan"]
Conditioning = Literal["projection", "acgan"]
AugmentKind = Literal["none", "diffaugment", "ada"]
Precision = Literal["fp32", "bf16", "fp16", "auto"]
CompileMode = Literal["off", "default", "reduce-overhead"]
LrDecay = Literal["none", "linear", "cosine"]
Device = str  # "auto", "cpu", "cuda" or "cuda:N"

ARCHS = ("mlp", "dcgan", "resnet")
LOSSES = ("nonsaturating", "minimax", "hinge", "lsgan", "wgan", "ragan")
CONDITIONINGS = ("projection", "acgan")
AUGMENTS = ("none", "diffaugment", "ada")
PRECISIONS = ("fp32", "bf16", "fp16", "auto")
COMPILE_MODES = ("off", "default", "reduce-overhead")
LR_DECAYS = ("none", "linear", "cosine")
DEVICES = ("auto", "cpu", "cuda")
MAX_SEED = 2**32  # numpy's seeds stop there, and the data order's seed * 1,000,003 + epoch stays in torch's range
CONV_SIZES = (28, 32, 64, 128, 256)  # the dcgan and resnet archs: a block per doubling


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
    d_width: int = 0  # D's width when it differs from G's (0: the same as width)
    conditioning: Conditioning = "projection"  # conditional models: projection D, or an AC-GAN classifier head
    spectral_norm: bool = False  # spectral normalization of D's layers (Miyato et al. 2018)
    spectral_norm_g: bool = False  # ... and of G's
    minibatch_std: bool = False  # D sees the batch's feature std as an extra input (Karras et al. 2018)
    pac: int = 1  # PacGAN packing (Lin et al. 2018): D judges `pac` samples at once, stacked along channels
    coarse_d: int = 0  # side of a coarse critic's view: D also judges the image pooled to coarse_d^2 pixels; 0: off

    def __post_init__(self) -> None:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown arch {self.arch!r}; use one of {', '.join(ARCHS)}")
        for name in ("image_size", "channels", "z_dim", "width"):
            if int(getattr(self, name)) <= 0:
                raise ConfigError(f"{name} must be positive; got {getattr(self, name)}")
        if self.d_width < 0:
            raise ConfigError(f"d_width must be 0 (same as width) or positive; got {self.d_width}")
        if self.image_size > 1 and self.channels not in (1, 3):
            raise ConfigError(
                f"channels must be 1 (grey) or 3 (RGB) for images; got {self.channels} (2 channels are 2-D points, "
                "image_size 1); pass --channels 1 or 3"
            )
        if self.conditioning not in CONDITIONINGS:
            raise ConfigError(f"unknown conditioning {self.conditioning!r}; use one of {', '.join(CONDITIONINGS)}")
        if self.num_classes < 0:
            raise ConfigError(f"num_classes must be 0 (unconditional) or more; got {self.num_classes}")
        if self.arch in ("dcgan", "resnet") and self.image_size not in CONV_SIZES:
            sizes = ", ".join(map(str, CONV_SIZES))
            raise ConfigError(f"the {self.arch} arch takes image_size {sizes}; got {self.image_size}")
        if self.out_activation not in ("tanh", "none"):
            raise ConfigError(f"out_activation must be 'tanh' or 'none'; got {self.out_activation!r}")
        if self.pac < 1:
            raise ConfigError(f"pac is the number of samples D judges together, at least 1; got {self.pac}")
        if self.coarse_d < 0 or self.coarse_d > self.image_size:
            raise ConfigError(
                f"coarse_d is the side of the coarse critic's pooled view, 0 (off) to image_size "
                f"({self.image_size}); got {self.coarse_d}"
            )
        if self.coarse_d and self.image_size == 1:
            raise ConfigError("coarse_d pools images; these are 2-D points (image_size 1): use coarse_d 0")
        if self.coarse_d and self.is_acgan:
            raise ConfigError(
                "coarse_d adds a logit column to D's output, as AC-GAN's class head does: use --conditioning "
                "projection with it, or coarse_d 0"
            )
        if self.pac > 1 and self.is_conditional:
            raise ConfigError(
                f"pac {self.pac} (D judges {self.pac} samples at once) would pack samples of different classes into "
                "one D input; a conditional model (--num-classes) needs --pac 1"
            )

    @property
    def shape(self) -> tuple[int, int, int]:
        """The shape of one sample: (C, H, W)."""
        return (self.channels, self.image_size, self.image_size)

    @property
    def is_conditional(self) -> bool:
        return self.num_classes > 0

    @property
    def disc_width(self) -> int:
        """D's width: d_width, or G's width when d_width is 0."""
        return self.d_width or self.width

    @property
    def is_acgan(self) -> bool:
        """D has an auxiliary classifier head: its output is (B, 1 + num_classes)."""
        return self.is_conditional and self.conditioning == "acgan"


@dataclass(frozen=True)
class TrainConfig:
    """A whole training run: the model, the data and the run settings."""

    model: ModelConfig = field(default_factory=ModelConfig)
    preset: str = "custom"
    data: str = "mnist"
    data_dir: str | None = None
    steps: int = 10_000
    batch_size: int = 128
    class_balance: float = 0.0  # conditional runs: each class drawn in proportion to count^(1 - b); 1: all equally
    lr_g: float = 2e-4
    lr_d: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    loss: LossKind = "nonsaturating"
    coarse_weight: float = 1.0  # with model.coarse_d: the coarse critic's loss weight, (L_main + w L_coarse) / 2
    mode_seeking: float = 0.0  # weight of G's mode-seeking term (diversity.py, Mao et al. 2019); 0: off
    # Regularizers and training tricks (each a small function in regularizers.py / augment.py).
    clip: float | None = None  # wgan: D's weights clipped to [-clip, clip]; None: 0.01 unless a gradient penalty is on
    gp: float = 0.0  # WGAN-GP weight (Gulrajani et al. 2017); 0: off
    gp_one_sided: bool = False  # penalize only gradient norms above 1
    r1: float = 0.0  # R1 gamma: gradient penalty on real data (Mescheder et al. 2018); 0: off
    r2: float = 0.0  # R2 gamma: the same on fake data; 0: off
    reg_every: int = 1  # lazy R1/R2: every K steps, scaled by K (StyleGAN2)
    n_critic: int = 1  # D updates per G update
    augment: AugmentKind = "none"  # differentiable augmentation of D's inputs: diffaugment or ada
    ada_target: float = 0.6  # ADA's target for r_t = E[sign(D(x))]
    label_smoothing: float = 1.0  # one-sided: D's target for real data (1.0: off; 0.9 is usual)
    instance_noise: float = 0.0  # std of Gaussian noise added to D's inputs, annealed to 0 over the run
    lr_decay: LrDecay = "none"  # learning-rate schedule: none, linear or cosine decay to 0 at the last step
    lr_decay_start: float = 0.5  # the decay begins at this fraction of the steps
    ema_decay: float = 0.0  # 0: no EMA of G
    ema_rampup: bool = True  # decay_t = min(ema_decay, (1 + t) / (10 + t)): the EMA follows G early on
    seed: int = 0
    device: Device = "auto"
    out_dir: str = "runs/seed"
    log_every: int = 100
    checkpoint_every: int = 1_000
    sample_every: int = 1_000
    keep_checkpoints: int = 3
    eval_every: int = 0  # 0: no metrics during training
    check_every: int = -1  # quick quality checks (classes, mode KL, diversity); -1: about 10 a run, fewer where
    # they would take over 2% of the training time (loop.CHECK_SHARE); N: every N steps, whatever they cost; 0: off
    tensorboard: bool = False  # also write TensorBoard events under RUN/tb/
    precision: Precision = "auto"  # autocast dtype of the forwards; auto: bf16 for conv nets on CPUs with native bf16
    sync_bn: bool = False  # torchrun: SyncBatchNorm across processes
    compile: CompileMode = "off"  # torch.compile G's and D's forwards: off, default or reduce-overhead (CUDA graphs)
    channels_last: bool = False  # convolutional models: NHWC memory format for weights and batches

    def __post_init__(self) -> None:
        if not 0 <= self.seed < MAX_SEED:
            raise ConfigError(f"seed must be an integer from 0 to {MAX_SEED - 1:,}; got {self.seed}")
        if self.steps <= 0:
            raise ConfigError(f"steps must be a positive number of training steps; got {self.steps}")
        if self.batch_size <= 0:
            raise ConfigError(f"batch size must be positive; got {self.batch_size}")
        if self.batch_size % self.model.pac:
            raise ConfigError(
                f"batch size {self.batch_size} does not divide into packs of {self.model.pac} (--pac); "
                f"pass a --batch-size that is a multiple of {self.model.pac}"
            )
        for name in ("lr_g", "lr_d"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive; got {getattr(self, name)}")
        for name in ("beta1", "beta2"):
            if not 0 <= getattr(self, name) < 1:
                raise ConfigError(f"{name} must be in [0, 1); got {getattr(self, name)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"unknown loss {self.loss!r}; use one of {', '.join(LOSSES)}")
        if not self.coarse_weight > 0:
            raise ConfigError(f"coarse_weight is the coarse critic's loss weight, positive; got {self.coarse_weight}")
        for name in ("gp", "r1", "r2", "instance_noise", "mode_seeking"):
            if not getattr(self, name) >= 0:
                raise ConfigError(f"{name} must be 0 (off) or positive; got {getattr(self, name)}")
        if self.clip is not None:
            if not self.clip > 0:
                raise ConfigError(f"clip must be positive (weights clipped to [-clip, clip]); got {self.clip}")
            if self.loss != "wgan":
                raise ConfigError(f"clip applies to the wgan loss only; got loss {self.loss!r}: drop --clip")
            if self.gp > 0:
                raise ConfigError("clip and gp are exclusive: weight clipping or a gradient penalty, not both")
        for name in ("reg_every", "n_critic"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be at least 1; got {getattr(self, name)}")
        if self.augment not in AUGMENTS:
            raise ConfigError(f"unknown augment {self.augment!r}; use one of {', '.join(AUGMENTS)}")
        if self.augment != "none" and self.model.image_size == 1:
            raise ConfigError(
                f"--augment {self.augment} works on images; {self.data} is 2-D points: use --augment none"
            )
        if not 0 <= self.class_balance <= 1:
            raise ConfigError(
                f"class_balance must be in [0, 1] (0: the data's mix, 1: every class equally); got {self.class_balance}"
            )
        if self.class_balance and not self.model.is_conditional:
            raise ConfigError(
                "class balance draws a conditional model's classes; this model is unconditional: "
                "set --num-classes or drop --class-balance"
            )
        if not 0 < self.ada_target < 1:
            raise ConfigError(f"ada_target must be in (0, 1); got {self.ada_target}")
        if not 0.5 < self.label_smoothing <= 1:
            raise ConfigError(f"label_smoothing is D's target for real data, in (0.5, 1]; got {self.label_smoothing}")
        if self.label_smoothing != 1 and self.loss in ("hinge", "wgan"):
            raise ConfigError(f"label smoothing needs a loss with a target; {self.loss!r} has none: drop it")
        if self.lr_decay not in LR_DECAYS:
            raise ConfigError(f"unknown lr_decay {self.lr_decay!r}; use one of {', '.join(LR_DECAYS)}")
        if not 0 <= self.lr_decay_start < 1:
            raise ConfigError(f"lr_decay_start is a fraction of the steps, in [0, 1); got {self.lr_decay_start}")
        if self.precision not in PRECISIONS:
            raise ConfigError(f"unknown precision {self.precision!r}; use one of {', '.join(PRECISIONS)}")
        if self.compile not in COMPILE_MODES:
            raise ConfigError(f"unknown compile mode {self.compile!r}; use one of {', '.join(COMPILE_MODES)}")
        if self.channels_last and self.model.arch == "mlp":
            raise ConfigError("--channels-last applies to the convolutional archs (dcgan, resnet); drop it for mlp")
        if self.check_every < -1:
            raise ConfigError(f"check_every must be -1 (auto), 0 (off) or a number of steps; got {self.check_every}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay must be in [0, 1) (0 turns EMA off); got {self.ema_decay}")
        if self.device not in DEVICES and not re.fullmatch(r"cuda:\d+", self.device):
            raise ConfigError(f"unknown device {self.device!r}; use one of {', '.join(DEVICES)} or cuda:N")
        for name in ("log_every", "checkpoint_every", "sample_every", "eval_every"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name} must be 0 (off) or a number of steps; got {getattr(self, name)}")
        if self.keep_checkpoints < 1:
            raise ConfigError(f"keep_checkpoints must be at least 1; got {self.keep_checkpoints}")

    @property
    def use_ema(self) -> bool:
        return self.ema_decay > 0

    @property
    def clip_value(self) -> float:
        """WGAN's weight clipping bound: clip (default 0.01) for the wgan loss without a gradient penalty; else 0."""
        if self.loss != "wgan" or self.gp > 0:
            return 0.0
        return self.clip if self.clip is not None else 0.01

    @property
    def check_interval(self) -> int:
        """Steps between quick quality checks: check_every, or about 10 a run for -1; 0: off."""
        if self.check_every >= 0:
            return self.check_every
        return max(self.log_every, self.steps // 10 // max(self.log_every, 1) * max(self.log_every, 1))

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
