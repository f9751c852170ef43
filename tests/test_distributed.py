"""Data parallel on the CPU: 2 gloo processes match 1 process at the same global batch; shards and bad input."""

from __future__ import annotations

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp
from torch import nn

from ganforge import distributed, losses
from ganforge.config import ModelConfig
from ganforge.distributed import DistInfo
from ganforge.errors import ConfigError
from ganforge.models import build_discriminator, build_generator, needs_separate_batches

GLOBAL_BATCH = 16
STEPS = 20
LR = 0.5
VARIANTS = ("ddp", "ddp-r1", "allreduce-r1")
MODEL = ModelConfig(arch="mlp", image_size=4, channels=1, z_dim=8, width=16)
BATCHNORM_MODEL = ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=8, width=4)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _sgd(module: nn.Module, lr: float) -> None:
    # Plain SGD by hand: torch's optimizers import torch._dynamo on first use, seconds in each spawned process.
    with torch.no_grad():
        for p in module.parameters():
            p -= lr * p.grad


def _train(info: DistInfo, variant: str, model: ModelConfig = MODEL) -> dict[str, torch.Tensor]:
    """A few GAN steps, each rank on its shard of the same global data and noise.

    variant: "ddp" (G and D wrapped in DistributedDataParallel), "ddp-r1" (plus an R1 penalty through the
    unwrapped D, in the same backward), "allreduce-r1" (no wrappers: gradients averaged after each backward).
    """
    torch.manual_seed(0)
    G, D = build_generator(model), build_discriminator(model)
    use_ddp, r1_gamma = variant.startswith("ddp"), 1.0 if variant.endswith("r1") else 0.0
    G_sync, D_sync = (distributed.wrap(G, info), distributed.wrap(D, info)) if use_ddp else (G, D)
    rng = torch.Generator().manual_seed(1)
    data = torch.rand(GLOBAL_BATCH * STEPS, *model.shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    local = distributed.local_batch_size(GLOBAL_BATCH, info)
    logged = []
    for step in range(STEPS):
        real = distributed.shard(data[step * GLOBAL_BATCH : (step + 1) * GLOBAL_BATCH], info)
        z = distributed.global_noise(rng, local, model.z_dim, info)
        fake = G_sync(z)
        if needs_separate_batches(D):  # BatchNorm: two forwards through the wrapper, then one backward
            logits_real, logits_fake = D_sync(real), D_sync(fake.detach())
        else:
            logits_real, logits_fake = D_sync(torch.cat([real, fake.detach()])).split(local)
        loss_d = losses.d_loss(logits_real, logits_fake, kind="nonsaturating")
        if r1_gamma:
            # R1 (Mescheder et al. 2018) through the unwrapped D, added to the one backward DDP reduces.
            real_r1 = real.detach().requires_grad_(True)
            (grad_real,) = torch.autograd.grad(D(real_r1).sum(), real_r1, create_graph=True)
            loss_d = loss_d + r1_gamma / 2 * grad_real.square().sum(dim=(1, 2, 3)).mean()
        D.zero_grad(set_to_none=True)
        loss_d.backward()
        if not use_ddp:
            distributed.average_gradients(D, info)
        _sgd(D, LR)
        D.requires_grad_(False)  # the G update goes through the plain D: only G's gradients are averaged
        loss_g = losses.g_loss(D(fake), kind="nonsaturating")
        G.zero_grad(set_to_none=True)
        loss_g.backward()
        D.requires_grad_(True)
        if not use_ddp:
            distributed.average_gradients(G, info)
        _sgd(G, LR)
        logged.append(torch.stack(list(distributed.reduce_mean({"d": loss_d, "g": loss_g}, info).values())))
    return {**{f"G.{k}": v for k, v in G.named_parameters()}, "losses": torch.stack(logged)}


def _worker(rank: int, world_size: int, port: int, out_dir: str) -> None:
    torch.set_num_threads(1)
    os.environ.update(
        RANK=str(rank), WORLD_SIZE=str(world_size), LOCAL_RANK=str(rank), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port)
    )
    info = distributed.init_from_env(torch.device("cpu"))
    try:
        results = {variant: _train(info, variant) for variant in VARIANTS}
        results["batchnorm"] = _train(info, "ddp", BATCHNORM_MODEL)
        stop = distributed.stop_agreed(rank == 1, info)
        torch.save({"results": results, "stop": stop}, f"{out_dir}/rank{rank}.pt")
    finally:
        distributed.cleanup(info)


@pytest.fixture(scope="module")
def two_process_run(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """One 2-process gloo job (every variant, to spawn once): each rank's results."""
    out_dir = tmp_path_factory.mktemp("ddp")
    mp.spawn(_worker, args=(2, _free_port(), str(out_dir)), nprocs=2, join=True)
    return [torch.load(out_dir / f"rank{rank}.pt", weights_only=True) for rank in range(2)]


@pytest.mark.parametrize("variant", VARIANTS)
def test_two_processes_match_one(two_process_run: list[dict], variant: str) -> None:
    # Measured: the largest difference is 2e-7 (OMP_NUM_THREADS=1 and 2); without averaging it is far above 1e-4.
    two = two_process_run[0]["results"][variant]
    one = _train(DistInfo(), variant)
    for name, weight in one.items():
        assert torch.allclose(two[name], weight, rtol=0, atol=1e-4), name
    # the weights moved well past the tolerance, so the match says something
    torch.manual_seed(0)
    assert (build_generator(MODEL).net[0].weight - one["G.net.0.weight"]).abs().max() > 1e-2


def test_batchnorm_model_keeps_ranks_in_step(two_process_run: list[dict]) -> None:
    # Per-rank batch statistics differ from one process's (only SyncBatchNorm, CUDA-only, would match), but
    # DDP's averaged gradients keep every rank's weights identical.
    rank0, rank1 = (run["results"]["batchnorm"] for run in two_process_run)
    for name, weight in rank0.items():
        assert torch.equal(weight, rank1[name]), name


def test_any_rank_stops_every_rank(two_process_run: list[dict]) -> None:
    assert all(run["stop"] for run in two_process_run)  # rank 1 alone asked to stop; both agree


def test_shard_is_a_disjoint_slice() -> None:
    x = torch.arange(12)
    parts = [distributed.shard(x, DistInfo(rank=r, world_size=3)) for r in range(3)]
    assert torch.equal(torch.cat(parts), x)
    assert distributed.shard(x, DistInfo()) is x


def test_batch_must_divide_by_world_size() -> None:
    with pytest.raises(ConfigError, match=r"batch size 10 does not divide by the 4 processes"):
        distributed.local_batch_size(10, DistInfo(rank=0, world_size=4))
    assert distributed.local_batch_size(12, DistInfo(rank=3, world_size=4)) == 3


def test_single_process_without_launcher(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    info = distributed.init_from_env(torch.device("cpu"))
    assert (info.rank, info.world_size, info.is_main, info.is_distributed) == (0, 1, True, False)
    assert distributed.stop_agreed(True, info) and not distributed.stop_agreed(False, info)
    stats = {"loss_d": torch.tensor(1.5)}
    assert distributed.reduce_mean(stats, info) is stats


def test_nccl_on_cpu_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT="1").items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match="nccl.*CPU"):
        distributed.init_from_env(torch.device("cpu"), backend="nccl")


def test_launcher_env_incomplete(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WORLD_SIZE", "2")
    for key in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(ConfigError, match="start the run with torchrun"):
        distributed.init_from_env(torch.device("cpu"))


def test_sync_bn_needs_batchnorm() -> None:
    with pytest.raises(ConfigError, match="no BatchNorm"):
        distributed.convert_sync_batchnorm(nn.Sequential(nn.Linear(2, 2)), DistInfo(), what="discriminator")
    with pytest.raises(ConfigError, match="needs CUDA"):
        distributed.convert_sync_batchnorm(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), DistInfo(), what="G")
