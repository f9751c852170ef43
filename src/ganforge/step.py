"""One training step: n_critic D updates (augment, loss, penalties), one G update, the EMA of G."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from ganforge import diversity, losses, regularizers, schedule, speed
from ganforge.config import TrainConfig
from ganforge.models import main_logits, split_logits
from ganforge.train_state import TrainState

NextBatch = Callable[[], tuple[Tensor, Tensor | None]]


def _grad_norm(module: nn.Module) -> Tensor:
    grads = [p.grad for p in module.parameters() if p.grad is not None]
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads))) if grads else torch.zeros(())


def _apply(
    loss: Tensor, opt: torch.optim.Optimizer, module: nn.Module, state: TrainState, scaler: Any, with_norm: bool
) -> Tensor | None:
    """Backward (DDP averages the gradients across processes in it), one optimizer step; the norm if asked."""
    opt.zero_grad(set_to_none=True)
    if scaler is None:
        loss.backward()
    else:  # fp16: scale the loss so small gradients survive; unscale before anything reads them
        scaler.scale(loss).backward()
        scaler.unscale_(opt)
    norm = _grad_norm(module) if with_norm else None
    if scaler is None:
        opt.step()
    else:
        scaler.step(opt)
        scaler.update()
    return norm


def _discriminate(
    state: TrainState, x_real: Tensor, x_fake: Tensor, labels: Tensor | None, D: nn.Module
) -> tuple[Tensor, Tensor]:
    """D's raw outputs on real and fake: one forward on [real; fake] when D has no batch statistics."""
    with state.autocast():
        if state.joint_d_batch:  # real and fake in separate halves (with packing: packs never mix them)
            both_labels = None if labels is None else torch.cat([labels, labels])
            out_real, out_fake = D(torch.cat([x_real, x_fake]), both_labels).float().chunk(2)
            return out_real, out_fake
        return D(x_real, labels).float(), D(x_fake, labels).float()


def d_update(
    state: TrainState, real: Tensor, fake: Tensor, labels: Tensor | None, cfg: TrainConfig, *, with_stats: bool = False
) -> dict[str, Tensor]:
    """One discriminator step: real up, fake down, plus its regularizers. `fake` comes detached."""
    # 1. D sees both batches the same way: augmented, and with annealed instance noise.
    x_real, x_fake = state.augment(real, cfg), state.augment(fake, cfg)
    if sigma := regularizers.annealed(cfg.instance_noise, state.step, cfg.steps):
        x_real = regularizers.add_instance_noise(x_real, sigma, state.aug_rng)
        x_fake = regularizers.add_instance_noise(x_fake, sigma, state.aug_rng)
    # Through the DDP wrapper under torchrun: this backward reaches D's weights. Penalties use the plain D
    # (a double backward DDP does not support) and join the same backward, whose gradients DDP averages.
    out_real, out_fake = _discriminate(state, x_real, x_fake, labels, state.d_net(sync=True))
    logits_real, class_real = split_logits(out_real, cfg.model)
    logits_fake, class_fake = split_logits(out_fake, cfg.model)

    # 2. The loss, the AC-GAN class terms, and the penalties (computed in float32, outside autocast).
    loss_d = losses.d_loss(
        logits_real, logits_fake, kind=cfg.loss, real_label=cfg.label_smoothing, coarse_weight=cfg.coarse_weight
    )
    if class_real is not None and class_fake is not None and labels is not None:
        loss_d = loss_d + losses.class_loss(class_real, labels) + losses.class_loss(class_fake, labels)
    penalty = d_penalty(state, x_real, x_fake, labels, cfg)
    total = loss_d if penalty is None else loss_d + penalty
    grad_norm = _apply(total, state.opt_d, state.D, state, state.scaler_d, with_stats)

    # 3. WGAN's Lipschitz constraint by clipping, and ADA's overfitting signal.
    if clip := cfg.clip_value:
        regularizers.clip_weights_(state.D, clip)
    logits_real, logits_fake = main_logits(logits_real.detach()), main_logits(logits_fake.detach())  # for stats
    if state.ada is not None:
        state.ada.observe(logits_real)
    out = {"loss_d": loss_d.detach(), "logits_real": logits_real, "logits_fake": logits_fake}
    if with_stats:
        out["grad_norm_d"] = grad_norm  # type: ignore[assignment]
        if penalty is not None:
            out["penalty_d"] = penalty.detach()
    return out


def d_penalty(
    state: TrainState, x_real: Tensor, x_fake: Tensor, labels: Tensor | None, cfg: TrainConfig
) -> Tensor | None:
    """The weighted sum of D's gradient penalties due at this step (None when none is)."""
    penalty = None
    if cfg.gp:
        gp = regularizers.gradient_penalty(
            state.D, x_real, x_fake, labels, one_sided=cfg.gp_one_sided, rng=state.aug_rng
        )
        penalty = cfg.gp * gp
    if state.step % cfg.reg_every == 0:  # lazy: every reg_every steps, scaled up to match (StyleGAN2)
        if cfg.r1:
            r1 = cfg.r1 / 2 * cfg.reg_every * regularizers.r1_penalty(state.D, x_real, labels)
            penalty = r1 if penalty is None else penalty + r1
        if cfg.r2:
            r2 = cfg.r2 / 2 * cfg.reg_every * regularizers.r2_penalty(state.D, x_fake, labels)
            penalty = r2 if penalty is None else penalty + r2
    return penalty


def g_update(
    state: TrainState,
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None,
    cfg: TrainConfig,
    *,
    z: Tensor,
    with_stats: bool = False,
) -> dict[str, Tensor]:
    """One generator step: make the updated D score the fakes as real (and, with mode seeking, unlike each
    other). D's weights get no gradient here."""
    state.D.requires_grad_(False)
    x_fake = state.augment(fake, cfg)
    logits_real = None
    if cfg.loss == "ragan":  # the relativistic loss compares with D's view of the real batch
        out_real, out_fake = _discriminate(state, state.augment(real, cfg), x_fake, labels, state.d_net())
        logits_real = split_logits(out_real, cfg.model)[0].detach()
    else:
        with state.autocast():
            out_fake = state.d_net()(x_fake, labels).float()
    logits_fake, class_fake = split_logits(out_fake, cfg.model)
    loss_g = losses.g_loss(logits_fake, kind=cfg.loss, logits_real=logits_real, coarse_weight=cfg.coarse_weight)
    if class_fake is not None and labels is not None:
        loss_g = loss_g + losses.class_loss(class_fake, labels)
    seeking = diversity.mode_seeking_loss(fake, z, labels) if cfg.mode_seeking else None
    total = loss_g if seeking is None else loss_g + cfg.mode_seeking * seeking
    state.D.requires_grad_(True)
    grad_norm = _apply(total, state.opt_g, state.G, state, state.scaler_g, with_stats)
    out = {"loss_g": loss_g.detach()}  # the adversarial loss alone, as the diagnostics read it
    if with_stats and seeking is not None:
        out["mode_seeking"] = seeking.detach()
    if grad_norm is not None:
        out["grad_norm_g"] = grad_norm
    return out


def update_ema(state: TrainState, cfg: TrainConfig) -> None:
    """G_ema <- decay * G_ema + (1 - decay) * G, with the decay ramped up from 0 so early exports are not noise."""
    if state.G_ema is None:
        return
    t = state.step
    decay = min(cfg.ema_decay, (1 + t) / (10 + t)) if cfg.ema_rampup else cfg.ema_decay
    with torch.no_grad():
        torch._foreach_lerp_(list(state.G_ema.parameters()), list(state.G.parameters()), 1 - decay)
        for b_ema, b in zip(state.G_ema.buffers(), state.G.buffers(), strict=True):
            b_ema.copy_(b)


def train_step(
    state: TrainState, next_batch: NextBatch, cfg: TrainConfig, *, with_stats: bool = False
) -> dict[str, Tensor]:
    """n_critic D updates, then one G update on the last fakes, then the EMA of G.

    next_batch() -> (real (B, C, H, W) in [-1, 1], labels (B,) or None): this process's share of a batch.
    """
    speed.mark_step(cfg)
    schedule.set_learning_rates(state, cfg)
    for i in range(cfg.n_critic):
        real, labels = next_batch()
        z = state.noise(real.size(0), cfg.model.z_dim, real.device)
        # Only the last critic step's fakes train G: earlier ones need no graph, and under torchrun only the
        # last forward goes through G's DDP wrapper (each wrapped forward must be followed by G's backward).
        last = i == cfg.n_critic - 1
        with state.autocast(), torch.set_grad_enabled(last):
            fake = state.g_net(sync=last)(z, labels)  # G runs once: D sees it detached, G through D
        d_out = d_update(state, real, fake.detach(), labels, cfg, with_stats=with_stats)
    g_out = g_update(state, real, fake, labels, cfg, z=z, with_stats=with_stats)
    update_ema(state, cfg)
    if state.ada is not None:  # every process adjusts p from the statistics of all of them
        state.ada.update(reduce=torch.distributed.all_reduce if state.world_size > 1 else None)
    state.step += 1

    out = {"loss_d": d_out["loss_d"], "loss_g": g_out["loss_g"]}
    if with_stats:
        with torch.no_grad():
            if cfg.loss == "wgan":  # a critic's scores are no probabilities: its mean scores, which it pulls apart
                out["critic_real"] = d_out["logits_real"].float().mean()
                out["critic_fake"] = d_out["logits_fake"].float().mean()
            else:
                out["d_real"] = _probability(d_out["logits_real"])
                out["d_fake"] = _probability(d_out["logits_fake"])
        out.update(grad_norm_d=d_out["grad_norm_d"], grad_norm_g=g_out["grad_norm_g"])
        if "mode_seeking" in g_out:
            out["mode_seeking"] = g_out["mode_seeking"]
        if "penalty_d" in d_out:
            out["penalty_d"] = d_out["penalty_d"]
        if cfg.lr_decay != "none":
            out["lr_g"] = torch.tensor(state.opt_g.param_groups[0]["lr"])
        if state.ada is not None:
            out["ada_p"] = torch.tensor(state.ada.p)
            out["ada_rt"] = torch.tensor(state.ada.rt)
    return out


def _probability(logits: Tensor) -> Tensor:
    """Mean D(x) as a probability; for losses without a sigmoid (wgan, lsgan, hinge) sigmoid(logit) still ranks."""
    return torch.sigmoid(logits.float()).mean()
