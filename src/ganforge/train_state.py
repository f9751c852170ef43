"""TrainState (everything that changes while training), how it is built, saved and restored."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import distributed, speed
from ganforge.augment import AdaptiveAugment, diff_augment
from ganforge.batches import Batches
from ganforge.config import TrainConfig, model_config_from_dict
from ganforge.distributed import DistInfo
from ganforge.errors import CheckpointError, ConfigError
from ganforge.models import Generator, build_discriminator, build_generator, needs_separate_batches
from ganforge.precision import MixedPrecision


@dataclass
class TrainState:
    """Everything that changes during training, and so everything a checkpoint stores."""

    G: Generator
    D: nn.Module
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator  # noise for z, identical on every process; data order is derived from (seed, epoch)
    aug_rng: torch.Generator  # augmentation, interpolates and instance noise
    ada: AdaptiveAugment | None = None
    step: int = 0
    rollbacks: int = 0  # non-finite losses recovered from (each halves both learning rates)
    joint_d_batch: bool = field(default=True)  # one D forward on [real; fake] (no batch statistics in D)
    scaler_g: torch.amp.GradScaler | None = None  # fp16 only
    scaler_d: torch.amp.GradScaler | None = None
    autocast: Callable[[], AbstractContextManager[Any]] = nullcontext
    # torchrun: DistributedDataParallel wrappers sharing G's and D's parameters. Forward through them only
    # where a backward into that network's weights follows (DDP averages those gradients in the backward).
    G_sync: nn.Module | None = None
    D_sync: nn.Module | None = None
    # --compile: torch.compile's wrappers around G and D (the DDP wrappers above are compiled in place).
    G_fast: nn.Module | None = None
    D_fast: nn.Module | None = None
    rank: int = 0
    world_size: int = 1

    def augment(self, x: Tensor, cfg: TrainConfig) -> Tensor:
        """D's view of a batch: augmented as cfg.augment says (the identity for "none")."""
        if cfg.augment == "diffaugment":
            return diff_augment(x, self.aug_rng)
        if self.ada is not None:
            return self.ada(x, self.aug_rng)
        return x

    def g_net(self, *, sync: bool = False) -> nn.Module:
        """The module to call for G's forward: DDP's wrapper under torchrun when a backward into G follows
        (`sync`), else the compiled G with --compile, else G."""
        if sync and self.G_sync is not None:
            return self.G_sync
        return self.G_fast if self.G_fast is not None else self.G

    def d_net(self, *, sync: bool = False) -> nn.Module:
        """The same for D. Gradient penalties call self.D itself (a double backward, which neither supports)."""
        if sync and self.D_sync is not None:
            return self.D_sync
        return self.D_fast if self.D_fast is not None else self.D

    def noise(self, batch: int, z_dim: int, device: torch.device) -> Tensor:
        """This process's slice of the step's global noise: every process draws all of it, then takes its rows."""
        z = torch.randn(batch * self.world_size, z_dim, generator=self.rng, device=device)
        return z[self.rank * batch : (self.rank + 1) * batch] if self.world_size > 1 else z


def _adam(params: Iterator[nn.Parameter], lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # The fused kernel does the whole update in one pass per tensor (CPU and CUDA).
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def build_state(cfg: TrainConfig, device: torch.device, dist: DistInfo | None = None) -> TrainState:
    """Fresh networks and optimizers, seeded by cfg.seed (the same on every process)."""
    dist = dist or DistInfo(device=device)
    cfg = speed.resolve_auto(cfg, device)  # train() has resolved it already; direct callers get the same nets
    torch.manual_seed(cfg.seed)
    G = build_generator(cfg.model).to(device)
    D = build_discriminator(cfg.model).to(device)
    if cfg.sync_bn:
        _sync_batchnorm(G, D, dist)
    G_ema = None
    if cfg.use_ema:
        G_ema = build_generator(cfg.model).to(device).eval().requires_grad_(False)
        G_ema.load_state_dict(G.state_dict())
    speed.to_channels_last(cfg, G, D, G_ema)
    rng = torch.Generator(device=device).manual_seed(cfg.seed)
    # Augmentation draws differ between processes (each augments its own slice of the batch).
    aug_rng = torch.Generator(device=device).manual_seed(cfg.seed + 1_000_003 + 7_919 * dist.rank)
    amp_g, amp_d = MixedPrecision(cfg.precision, device), MixedPrecision(cfg.precision, device)
    G_sync = distributed.wrap(G, dist) if dist.is_distributed else None
    D_sync = distributed.wrap(D, dist) if dist.is_distributed else None
    return TrainState(
        G=G,
        D=D,
        G_ema=G_ema,
        opt_g=_adam(G.parameters(), cfg.lr_g, cfg, device),
        opt_d=_adam(D.parameters(), cfg.lr_d, cfg, device),
        rng=rng,
        aug_rng=aug_rng,
        ada=AdaptiveAugment(target=cfg.ada_target) if cfg.augment == "ada" else None,
        joint_d_batch=not needs_separate_batches(D),
        scaler_g=amp_g.scaler,
        scaler_d=amp_d.scaler,
        autocast=amp_g.autocast,
        G_sync=G_sync if G_sync is None else speed.compiled(G_sync, cfg) or G_sync,
        D_sync=D_sync if D_sync is None else speed.compiled(D_sync, cfg) or D_sync,
        G_fast=speed.compiled(G, cfg),
        D_fast=speed.compiled(D, cfg),
        rank=dist.rank,
        world_size=dist.world_size,
    )


def _sync_batchnorm(G: Generator, D: nn.Module, dist: DistInfo) -> None:
    """--sync-bn: BatchNorm statistics over the global batch, in place (an error when neither network has any)."""
    has_bn = [any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in net.modules()) for net in (G, D)]
    if not any(has_bn):
        raise ConfigError("--sync-bn: neither network has a BatchNorm layer; drop --sync-bn for this model")
    for net, what, has in ((G, "generator", has_bn[0]), (D, "discriminator", has_bn[1])):
        if has:
            distributed.convert_sync_batchnorm(net, dist, what=what)


def state_payload(state: TrainState, cfg: TrainConfig, batches: Batches, extra: dict[str, Any]) -> dict[str, Any]:
    """The checkpoint contents: plain tensors, state dicts and builtins."""
    payload: dict[str, Any] = {
        "config": json.dumps(cfg.to_dict()),
        "step": state.step,
        "rollbacks": state.rollbacks,
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "rng": {"noise": state.rng.get_state(), "augment": state.aug_rng.get_state(), "torch": torch.get_rng_state()},
        "data": batches.position(),
        **extra,
    }
    if state.G_ema is not None:
        payload["G_ema"] = state.G_ema.state_dict()
    if state.ada is not None:
        payload["ada"] = state.ada.state_dict()
    for name in ("scaler_g", "scaler_d"):
        if (scaler := getattr(state, name)) is not None:
            payload[name] = scaler.state_dict()
    return payload


def restore_state(state: TrainState, payload: dict[str, Any], cfg: TrainConfig, batches: Batches, path: Path) -> None:
    """Load a checkpoint into a freshly built state; the model configs must match."""
    saved = model_config_from_dict(json.loads(payload["config"])["model"])
    if saved != cfg.model:
        raise CheckpointError(
            f"checkpoint {path} holds a different model ({saved}) than this run's ({cfg.model}); "
            "resume with the run's own config or start a new --out"
        )
    try:
        state.G.load_state_dict(payload["G"])
        state.D.load_state_dict(payload["D"])
        state.opt_g.load_state_dict(payload["opt_g"])
        state.opt_d.load_state_dict(payload["opt_d"])
        if state.G_ema is not None:
            state.G_ema.load_state_dict(payload.get("G_ema", payload["G"]))
        if state.ada is not None:
            state.ada.load_state_dict(payload["ada"])
        for name in ("scaler_g", "scaler_d"):
            if (scaler := getattr(state, name)) is not None:
                scaler.load_state_dict(payload[name])
        state.rng.set_state(payload["rng"]["noise"])
        if "augment" in payload["rng"]:
            state.aug_rng.set_state(payload["rng"]["augment"])
        torch.set_rng_state(payload["rng"]["torch"])
        state.step = int(payload["step"])
        state.rollbacks = int(payload.get("rollbacks", 0))
        batches.restore(payload["data"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is incomplete or incompatible ({e}); start a new run") from e
