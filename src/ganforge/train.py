"""The training loop: TrainState, one train_step, and train() which owns data, logs and checkpoints."""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import checkpoint, losses
from ganforge.batches import Batches
from ganforge.config import TrainConfig, model_config_from_dict
from ganforge.data import Dataset, load_dataset
from ganforge.device import resolve_device
from ganforge.errors import CheckpointError, DataError, TrainingError
from ganforge.images import make_grid, save_png
from ganforge.io import write_text_atomic
from ganforge.models import Generator, build_discriminator, build_generator
from ganforge.sample import generate, latents
from ganforge.version import __version__

log = logging.getLogger(__name__)

GRID_SIZE = 25  # the 5x5 grid of samples.png


@dataclass
class TrainState:
    """Everything that changes during training, and so everything a checkpoint stores."""

    G: Generator
    D: nn.Module
    G_ema: Generator | None
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    rng: torch.Generator  # noise for z; data order is derived from (seed, epoch)
    step: int = 0
    joint_d_batch: bool = field(default=True)  # one D forward on [real; fake] (no BatchNorm in D)


@dataclass
class RunResult:
    """What train() returns: where the outputs are and how the run went."""

    run_dir: Path
    step: int
    steps_trained: int
    seconds: float
    img_per_s: float
    final: dict[str, float]
    generator_path: Path
    samples_path: Path | None
    interrupted: bool = False


def _adam(params: Iterator[nn.Parameter], lr: float, cfg: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    # The fused kernel does the whole update in one pass per tensor (CPU and CUDA).
    return torch.optim.Adam(params, lr=lr, betas=(cfg.beta1, cfg.beta2), fused=device.type in ("cpu", "cuda"))


def build_state(cfg: TrainConfig, device: torch.device) -> TrainState:
    """Fresh networks and optimizers, seeded by cfg.seed."""
    torch.manual_seed(cfg.seed)
    G = build_generator(cfg.model).to(device)
    D = build_discriminator(cfg.model).to(device)
    G_ema = None
    if cfg.use_ema:
        G_ema = build_generator(cfg.model).to(device).eval().requires_grad_(False)
        G_ema.load_state_dict(G.state_dict())
    rng = torch.Generator(device=device)
    rng.manual_seed(cfg.seed)
    has_batchnorm = any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in D.modules())
    return TrainState(
        G=G,
        D=D,
        G_ema=G_ema,
        opt_g=_adam(G.parameters(), cfg.lr_g, cfg, device),
        opt_d=_adam(D.parameters(), cfg.lr_d, cfg, device),
        rng=rng,
        joint_d_batch=not has_batchnorm,
    )


def _grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())


def train_step(
    state: TrainState, real: Tensor, labels: Tensor | None, cfg: TrainConfig, *, with_stats: bool = False
) -> dict[str, Tensor]:
    """One D update, then one G update on the same fakes. real: (B, C, H, W) in [-1, 1]."""
    G, D = state.G, state.D
    batch = real.size(0)
    z = torch.randn(batch, cfg.model.z_dim, generator=state.rng, device=real.device)
    fake = G(z, labels)  # G runs once; the D update sees it detached, the G update through D

    # 1. Discriminator: real up, fake down. detach() keeps G out of this backward.
    if state.joint_d_batch:
        both_labels = None if labels is None else torch.cat([labels, labels])
        logits_real, logits_fake = D(torch.cat([real, fake.detach()]), both_labels).split(batch)
    else:
        logits_real, logits_fake = D(real, labels), D(fake.detach(), labels)
    loss_d = losses.d_loss(logits_real, logits_fake, kind=cfg.loss)
    state.opt_d.zero_grad(set_to_none=True)
    loss_d.backward()
    stats = {"grad_norm_d": _grad_norm(D)} if with_stats else {}
    state.opt_d.step()

    # 2. Generator: make the updated D score the same fakes as real. D's weights need no gradient here.
    D.requires_grad_(False)
    logits_g = D(fake, labels)
    loss_g = losses.g_loss(logits_g, kind=cfg.loss)
    state.opt_g.zero_grad(set_to_none=True)
    loss_g.backward()
    D.requires_grad_(True)
    if with_stats:
        stats["grad_norm_g"] = _grad_norm(G)
    state.opt_g.step()

    # 3. EMA of G, used for sampling and metrics.
    if state.G_ema is not None:
        with torch.no_grad():
            torch._foreach_lerp_(list(state.G_ema.parameters()), list(G.parameters()), 1 - cfg.ema_decay)
            for b_ema, b in zip(state.G_ema.buffers(), G.buffers(), strict=True):
                b_ema.copy_(b)

    state.step += 1
    out = {"loss_d": loss_d.detach(), "loss_g": loss_g.detach()}
    if with_stats:
        with torch.no_grad():
            out["d_real"] = torch.sigmoid(logits_real).mean()
            out["d_fake"] = torch.sigmoid(logits_fake).mean()
        out.update(stats)
    return out


def state_payload(state: TrainState, cfg: TrainConfig, batches: Batches) -> dict[str, Any]:
    """The checkpoint contents: plain tensors, state dicts and builtins."""
    payload: dict[str, Any] = {
        "config": json.dumps(cfg.to_dict()),
        "step": state.step,
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "rng": {"noise": state.rng.get_state(), "torch": torch.get_rng_state()},
        "data": batches.position(),
    }
    if state.G_ema is not None:
        payload["G_ema"] = state.G_ema.state_dict()
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
        state.rng.set_state(payload["rng"]["noise"])
        torch.set_rng_state(payload["rng"]["torch"])
        state.step = int(payload["step"])
        batches.restore(payload["data"])
    except (KeyError, RuntimeError, ValueError) as e:
        raise CheckpointError(f"checkpoint {path} is incomplete or incompatible ({e}); start a new run") from e


@contextmanager
def _stop_requests() -> Iterator[list[int]]:
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps, so a stop never splits a step."""
    received: list[int] = []
    if threading.current_thread() is not threading.main_thread():  # signals reach the main thread only
        yield received
        return
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}

    def handler(signum: int, frame: object) -> None:
        received.append(signum)

    for sig in previous:
        signal.signal(sig, handler)
    try:
        yield received
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _prepare_run_dir(cfg: TrainConfig, resume: bool) -> Path:
    run_dir = Path(cfg.out_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise TrainingError(f"output path {run_dir} is a file; pass a folder with --out")
    if not resume and checkpoint.latest_checkpoint(run_dir) is not None:
        raise TrainingError(f"{run_dir} already holds a run; pass --resume to continue it or choose another --out")
    for stale in run_dir.glob("**/.*.tmp"):  # left by a process killed mid-write
        stale.unlink()
    write_text_atomic(run_dir / "config.json", cfg.to_json() + "\n")
    return run_dir


def _trim_metrics(path: Path, step: int) -> None:
    """Drop log lines past `step` (left by a run killed after its last checkpoint)."""
    if not path.exists():
        return
    kept = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line)["step"] <= step]
    write_text_atomic(path, "".join(line + "\n" for line in kept))


def load_training_data(cfg: TrainConfig) -> Dataset:
    """The run's training data, conformed to the model's image size and channels."""
    return load_dataset(
        cfg.data, split="train", data_dir=cfg.data_dir, image_size=cfg.model.image_size, channels=cfg.model.channels
    )


def check_dataset(cfg: TrainConfig, dataset: Dataset) -> None:
    """The data must fit the model and the batch size."""
    if dataset.images.shape[1:] != cfg.model.shape:
        raise DataError(
            f"{cfg.data} holds samples of shape {tuple(dataset.images.shape[1:])}, the model makes {cfg.model.shape}; "
            "pass data that fits the preset"
        )
    if cfg.batch_size > len(dataset):
        raise DataError(
            f"batch size {cfg.batch_size} is larger than the dataset {cfg.data} ({len(dataset)} images); "
            "pass a smaller --batch-size"
        )
    if cfg.model.is_conditional and (dataset.labels is None or dataset.num_classes != cfg.model.num_classes):
        raise DataError(
            f"a conditional model with {cfg.model.num_classes} classes needs labeled data; "
            f"{cfg.data} has {dataset.num_classes} classes"
        )


def train(
    cfg: TrainConfig,
    *,
    resume: bool = False,
    dataset: Dataset | None = None,
    on_step: Callable[[int, dict[str, float] | None], None] | None = None,
    evaluator: Callable[[Generator], dict[str, Any]] | None = None,
) -> RunResult:
    """Train a GAN as `cfg` says; writes the run directory (DESIGN.md) and returns a RunResult.

    Args:
        resume: continue from the run's latest checkpoint; cfg.steps is the run's total.
        on_step: called after every step with (step, logged stats or None).
        evaluator: G -> metrics dict, called every cfg.eval_every steps (default: ganforge.metrics.evaluate).

    Example:
        >>> ganforge.train(dataclasses.replace(ganforge.PRESETS["seed"], steps=2_000, out_dir="runs/quick"))
    """
    device = resolve_device(cfg.device)
    if resume and checkpoint.latest_checkpoint(cfg.out_dir) is None:
        raise CheckpointError(f"--resume: no checkpoint in {cfg.out_dir}/checkpoints; train without --resume first")
    dataset = dataset if dataset is not None else load_training_data(cfg)
    check_dataset(cfg, dataset)
    run_dir = _prepare_run_dir(cfg, resume)
    state = build_state(cfg, device)
    batches = Batches(dataset, cfg.batch_size, seed=cfg.seed, device=device)
    metrics_path = run_dir / "metrics.jsonl"
    if resume:
        path = checkpoint.latest_checkpoint(run_dir)
        assert path is not None
        restore_state(state, checkpoint.load_checkpoint(path), cfg, batches, path)
        _trim_metrics(metrics_path, state.step)
        log.info("resumed %s at step %d", run_dir, state.step)
    if cfg.eval_every and evaluator is None:
        from ganforge.metrics import evaluate

        def evaluator(G: Generator) -> dict[str, Any]:
            return evaluate(G, data=cfg.data, data_dir=cfg.data_dir, n=2_000)

    fixed_z = latents(GRID_SIZE, cfg.model.z_dim, seed=cfg.seed).to(device)
    provenance = {
        "ganforge_version": __version__,
        "preset": cfg.preset,
        "data": cfg.data,
        "dataset": dataset.name,
        "seed": cfg.seed,
        "loss": cfg.loss,
    }

    def sampler() -> Generator:
        return state.G_ema if state.G_ema is not None else state.G

    def save_grid(path: Path) -> None:
        G = sampler()
        was_training = G.training
        G.eval()
        labels = torch.arange(GRID_SIZE, device=device) % cfg.model.num_classes if cfg.model.is_conditional else None
        images = generate(G, fixed_z, labels)
        G.train(was_training)
        if cfg.model.image_size > 1:  # toy 2-D data has no picture to save
            save_png(
                make_grid(images, nrow=5),
                path,
                {"Software": f"ganforge {__version__}", "ganforge:step": str(state.step)},
            )

    def save_all() -> None:
        checkpoint.save_checkpoint(checkpoint.checkpoint_path(run_dir, state.step), state_payload(state, cfg, batches))
        checkpoint.prune_checkpoints(run_dir, cfg.keep_checkpoints)
        checkpoint.save_generator(
            run_dir / checkpoint.GENERATOR_FILE, sampler(), cfg.model, {**provenance, "step": state.step}
        )

    start_step = state.step
    t_start = t_last = time.perf_counter()
    step_last = state.step
    last: dict[str, float] = {}
    interrupted = False
    nonfinite = torch.zeros((), dtype=torch.bool, device=device)
    with _stop_requests() as stop, open(metrics_path, "a") as metrics_file:
        while state.step < cfg.steps:
            with_stats = cfg.log_every > 0 and (state.step + 1) % cfg.log_every == 0
            real, labels = batches.next()
            out = train_step(state, real, labels, cfg, with_stats=with_stats or state.step + 1 == cfg.steps)
            # A finiteness check syncs a GPU, so there it waits for the next log or checkpoint step; on
            # the CPU it costs nothing and names the exact step. Nothing non-finite is ever saved.
            nonfinite |= ~torch.isfinite(out["loss_d"] + out["loss_g"])
            checkpoint_due = cfg.checkpoint_every and state.step % cfg.checkpoint_every == 0
            if (device.type == "cpu" or with_stats or checkpoint_due or stop or state.step == cfg.steps) and bool(
                nonfinite
            ):
                good = checkpoint.latest_checkpoint(run_dir)
                raise TrainingError(
                    f"the loss became non-finite by step {state.step} (loss_d {out['loss_d'].item()}, "
                    f"loss_g {out['loss_g'].item()}); kept the last good checkpoint {good}; "
                    "lower the learning rate or try --loss hinge"
                )
            logged = None
            if with_stats:
                now = time.perf_counter()
                logged = {k: round(float(v), 6) for k, v in out.items()}
                logged["img_per_s"] = round((state.step - step_last) * cfg.batch_size / (now - t_last), 1)
                t_last, step_last = now, state.step
                if evaluator and cfg.eval_every and state.step % cfg.eval_every == 0:
                    logged.update(_scalars(evaluator(sampler())))
                metrics_file.write(json.dumps({"step": state.step, **logged}) + "\n")
                metrics_file.flush()
                log.info(
                    "step %d  loss_d %.3f  loss_g %.3f  D(x) %.2f  D(G(z)) %.2f  img/s %.0f",
                    state.step, logged["loss_d"], logged["loss_g"], logged["d_real"], logged["d_fake"],
                    logged["img_per_s"],
                )  # fmt: skip
            if state.step == cfg.steps:
                last = {k: float(v) for k, v in out.items()}
            if cfg.sample_every and state.step % cfg.sample_every == 0:
                save_grid(run_dir / "samples" / f"step_{state.step:07d}.png")
            if checkpoint_due or state.step == cfg.steps:
                save_all()
            if on_step:
                on_step(state.step, logged)
            if stop:
                interrupted = True
                save_all()
                log.warning("stopped at step %d; checkpoint saved; continue with --resume", state.step)
                break
    seconds = time.perf_counter() - t_start
    samples_path = None
    if not interrupted:
        if state.step == start_step:  # nothing left to train: the run was already at cfg.steps
            log.info("%s is already at step %d of %d", run_dir, state.step, cfg.steps)
            save_all()
        samples_path = run_dir / "samples.png"
        save_grid(samples_path)
    steps_trained = state.step - start_step
    return RunResult(
        run_dir=run_dir,
        step=state.step,
        steps_trained=steps_trained,
        seconds=seconds,
        img_per_s=steps_trained * cfg.batch_size / seconds if seconds > 0 else 0.0,
        final=last,
        generator_path=run_dir / checkpoint.GENERATOR_FILE,
        samples_path=samples_path if samples_path and samples_path.exists() else None,
        interrupted=interrupted,
    )


def _scalars(result: dict[str, Any]) -> dict[str, float]:
    """The numeric entries of an eval result, for metrics.jsonl."""
    return {k: float(v) for k, v in result.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
