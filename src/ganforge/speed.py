"""Speed options that leave the algorithm alone: precision "auto", torch.compile of the forwards, channels_last.

Compile is off by default: on the CPUs measured it made no step faster (README, "Speed options"); on a GPU,
`--compile reduce-overhead` captures the small models' many kernel launches in CUDA graphs. channels_last pays
together with bf16 on CPUs with native bf16, where precision "auto" turns both on.
"""

from __future__ import annotations

import dataclasses
import logging

import torch
from torch import Tensor, nn

from ganforge import precision
from ganforge.config import TrainConfig

log = logging.getLogger(__name__)


def resolve_auto(cfg: TrainConfig, device: torch.device) -> TrainConfig:
    """cfg with precision "auto" made concrete (and channels_last with bf16, which it pays with), said in one line.

    The run directory records what was resolved, so a resumed run keeps it whatever machine it continues on.
    """
    if cfg.precision != "auto":
        return cfg
    flags = precision.cpu_flags()  # read once; the module attribute, so tests can stand in another CPU
    if precision.resolve_precision("auto", device, conv=cfg.model.arch != "mlp", flags=flags) == "bf16":
        native = sorted(precision.NATIVE_BF16_FLAGS & flags)
        log.info("precision auto: bf16 with channels_last (this CPU multiplies bfloat16 natively: %s); "
                 "--precision fp32 turns it off", ", ".join(native))  # fmt: skip
        return dataclasses.replace(cfg, precision="bf16", channels_last=True)
    return dataclasses.replace(cfg, precision="fp32")


def compiled(module: nn.Module, cfg: TrainConfig) -> nn.Module | None:
    """torch.compile's wrapper around `module` (sharing its parameters), or None with --compile off.

    The wrapper serves the plain forwards only: gradient penalties need a double backward, which compiled
    graphs do not support, so they call the module itself. State dicts are always the module's own.
    """
    if cfg.compile == "off":
        return None
    # Static shapes: one graph a batch shape (D sees B and 2B images), so which kernels run at a step does not
    # depend on the shapes seen before it, and a resumed run computes exactly what the straight one did.
    return torch.compile(module, mode=cfg.compile, dynamic=False)  # type: ignore[return-value]  # an nn.Module


def to_channels_last(cfg: TrainConfig, *nets: nn.Module | None) -> None:
    """--channels-last: the conv nets' weights in NHWC order, in place (a no-op without the option)."""
    if not cfg.channels_last:
        return
    for net in nets:
        if net is not None:
            net.to(memory_format=torch.channels_last)  # type: ignore[call-overload]  # missing from torch's stubs


def batch_format(x: Tensor, cfg: TrainConfig) -> Tensor:
    """An image batch in the run's memory format (NHWC with --channels-last, else as it is)."""
    return x.contiguous(memory_format=torch.channels_last) if cfg.channels_last and x.dim() == 4 else x


def mark_step(cfg: TrainConfig) -> None:
    """With CUDA graphs (--compile reduce-overhead), tell them a new training step begins: outputs of the last
    step's replays may then be overwritten."""
    if cfg.compile == "reduce-overhead":
        torch.compiler.cudagraph_mark_step_begin()
