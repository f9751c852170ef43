"""Data parallel training over torch.distributed: ranks from torchrun's environment, batch shards, agreed stops."""

from __future__ import annotations

import datetime
import inspect
import os
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from ganforge.errors import ConfigError

Backend = Literal["auto", "gloo", "nccl"]
BACKENDS = ("auto", "gloo", "nccl")
_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job; the single-process default has no process group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")
    backend: str | None = None  # None: no process group (plain single-process run)

    @property
    def is_main(self) -> bool:
        """Rank 0 alone writes the run directory and logs."""
        return self.rank == 0

    @property
    def is_distributed(self) -> bool:
        return self.backend is not None


def launched_by_torchrun() -> bool:
    """True when torchrun (or another launcher) set WORLD_SIZE for this process."""
    return "WORLD_SIZE" in os.environ


def env_rank() -> int:
    """This process's rank from the environment (0 without a launcher); usable before init_from_env."""
    return int(os.environ.get("RANK", "0"))


def init_from_env(device: torch.device, *, backend: Backend = "auto", timeout_s: float = 600.0) -> DistInfo:
    """Join the process group that torchrun describes in RANK, WORLD_SIZE, LOCAL_RANK and MASTER_*.

    Without WORLD_SIZE this is a no-op and returns a single-process DistInfo on `device`. On CUDA each
    rank takes the GPU numbered LOCAL_RANK and NCCL; on the CPU, gloo. Call cleanup() at the end.
    """
    if not launched_by_torchrun():
        if backend == "nccl":
            raise ConfigError("backend 'nccl' is for several processes; start the run with torchrun or drop it")
        return DistInfo(device=device)
    if backend not in BACKENDS:
        raise ConfigError(f"unknown distributed backend {backend!r}; use one of {', '.join(BACKENDS)}")
    missing = [name for name in _ENV if name not in os.environ]
    if missing:
        raise ConfigError(f"WORLD_SIZE is set but {', '.join(missing)} is not; start the run with torchrun")
    rank, world_size, local_rank = (int(os.environ[k]) for k in ("RANK", "WORLD_SIZE", "LOCAL_RANK"))
    if device.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise ConfigError(
                f"LOCAL_RANK {local_rank} has no GPU (this machine has {torch.cuda.device_count()}); "
                "start at most one process per GPU (--nproc-per-node)"
            )
        device = torch.device("cuda", local_rank)
        torch.cuda.set_device(device)
        chosen = "nccl" if backend == "auto" else backend
    else:
        if backend == "nccl":
            raise ConfigError("backend 'nccl' needs CUDA GPUs but this run is on the CPU; use gloo or --device cuda")
        chosen = "gloo"
    if not dist.is_initialized():
        dist.init_process_group(chosen, rank=rank, world_size=world_size, timeout=datetime.timedelta(seconds=timeout_s))
    return DistInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=device, backend=chosen)


def cleanup(info: DistInfo) -> None:
    """Leave the process group (a no-op for a single process)."""
    if info.is_distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    """Wait until every rank gets here (a no-op for a single process)."""
    if info.is_distributed:
        if info.backend == "nccl":
            dist.barrier(device_ids=[info.local_rank])
        else:
            dist.barrier()


def local_batch_size(global_batch: int, info: DistInfo, *, pack: int = 1) -> int:
    """Each rank's share of the global batch; it must divide evenly, and each share into packs of `pack` (--pac)."""
    if global_batch % (info.world_size * pack):
        raise ConfigError(
            f"batch size {global_batch} does not divide by the {info.world_size} processes"
            + (f" into packs of {pack} (--pac)" if pack > 1 else "")
            + f"; pass a --batch-size that is a multiple of {info.world_size * pack}"
        )
    return global_batch // info.world_size


def shard(x: Tensor, info: DistInfo) -> Tensor:
    """This rank's disjoint slice of a global batch along dim 0 (a view; x itself for one process)."""
    if info.world_size == 1:
        return x
    size = local_batch_size(x.size(0), info)
    return x.narrow(0, info.rank * size, size)


def global_noise(rng: torch.Generator, local_batch: int, z_dim: int, info: DistInfo) -> Tensor:
    """This rank's slice of the global batch's noise: every rank draws the same (B, z_dim) and keeps its part.

    So a run on N processes sees the same z as a run on one at the same global batch.
    """
    z = torch.randn(local_batch * info.world_size, z_dim, generator=rng, device=rng.device)
    return shard(z, info)


def wrap(module: nn.Module, info: DistInfo) -> nn.Module:
    """DistributedDataParallel around `module` (gradients averaged in backward), or `module` alone.

    The wrapper shares the module's parameters: optimizers, EMA and checkpoints keep using `module`.
    Forward through the wrapper only where a backward into this module's weights follows.
    """
    if not info.is_distributed:
        return module
    ddp = nn.parallel.DistributedDataParallel
    device_ids = [info.local_rank] if info.device.type == "cuda" else None
    # No buffer broadcast each forward: BatchNorm running stats stay per rank (rank 0's are saved), and a
    # broadcast would cost a collective per call. torch 2.13 renamed the flag; older releases know the old name.
    if "forward_sync_buffers" in inspect.signature(ddp).parameters:
        return ddp(module, device_ids=device_ids, forward_sync_buffers=False)
    return ddp(module, device_ids=device_ids, broadcast_buffers=False)


def average_gradients(module: nn.Module, info: DistInfo) -> None:
    """Average .grad of every parameter across ranks in one flat all-reduce (for steps DDP cannot take)."""
    if not info.is_distributed:
        return
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    flat /= info.world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset : offset + g.numel()].view_as(g))
        offset += g.numel()


def reduce_mean(stats: dict[str, Tensor], info: DistInfo) -> dict[str, Tensor]:
    """The mean over ranks of each scalar in `stats`, in one all-reduce; every rank gets the result."""
    if not info.is_distributed or not stats:
        return stats
    keys = list(stats)
    flat = torch.stack([stats[k].detach().float().reshape(()) for k in keys])
    dist.all_reduce(flat)
    flat /= info.world_size
    return dict(zip(keys, flat.unbind(), strict=True))


def agree_any(flags: list[bool | Tensor], info: DistInfo) -> list[bool]:
    """For each flag: is it true on any rank? One all-reduce; every rank gets the same answer."""
    local = torch.tensor([bool(f) for f in flags], dtype=torch.int32)
    if info.is_distributed:
        local = local.to(info.device)
        dist.all_reduce(local, op=dist.ReduceOp.MAX)
    return [bool(v) for v in local.tolist()]


def stop_agreed(local_flag: bool, info: DistInfo) -> bool:
    """True on every rank when any rank was asked to stop, so all ranks stop after the same step."""
    return agree_any([local_flag], info)[0]


def convert_sync_batchnorm(module: nn.Module, info: DistInfo, *, what: str) -> None:
    """Replace the BatchNorm layers inside `module` with SyncBatchNorm (statistics over the global batch), in place.

    CUDA runs only: torch's SyncBatchNorm runs on GPUs, so on the CPU the batch statistics stay per rank.
    """
    if not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in module.modules()):
        raise ConfigError(f"--sync-bn: the {what} has no BatchNorm layer; drop --sync-bn for this model")
    if isinstance(module, nn.modules.batchnorm._BatchNorm):
        raise ConfigError(f"--sync-bn: the {what} is a bare BatchNorm layer; wrap it in a network")
    if info.device.type != "cuda":
        raise ConfigError("--sync-bn needs CUDA (torch's SyncBatchNorm runs on GPUs); drop it or use --device cuda")
    # For a module that is not itself BatchNorm, torch swaps the layers inside it and returns the same object.
    nn.SyncBatchNorm.convert_sync_batchnorm(module)
