"""Discriminator regularizers and training tricks: gradient penalties, weight clipping, instance noise.

The penalties return the UNWEIGHTED value; the training step multiplies by the configured weight.
Randomness comes from a passed torch.Generator, so that a resumed run draws the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ganforge.models import split_logits

# D: (images, labels or None) -> logits (B,), (B, 1 + K) for AC-GAN, (B, 2) with a coarse critic. A module
# or any callable (say, D behind an augmentation) fits.
Critic = Callable[[Tensor, Tensor | None], Tensor]


def adversarial(out: Tensor, D: Critic | None = None) -> Tensor:
    """D's real/fake logits from its output, read as the training step reads them (models.split_logits, with
    D's config when D is a Discriminator): (B,) as is, column 0 of an AC-GAN's (B, 1 + K), both columns of a
    coarse critic's (B, 2), so that a penalty smooths both critics."""
    return split_logits(out, getattr(D, "cfg", None))[0]


def _input_gradient(D: Critic, x: Tensor, labels: Tensor | None) -> Tensor:
    """d sum(l(x)) / dx for a leaf copy of x, kept in the graph (create_graph) so a penalty on it trains D.

    At least in float32 (a bf16 or fp16 run's fakes come out of autocast in the lower precision).
    """
    x = x.detach().to(torch.promote_types(x.dtype, torch.float32)).requires_grad_(True)
    logits = adversarial(D(x, labels), D).float()
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    # (logits, inputs a logit saw): each logit depends on its own sample only, or (PacGAN) on its pack's.
    return grad.reshape(logits.size(0), -1)


def gradient_penalty(
    D: Critic,
    real: Tensor,
    fake: Tensor,
    labels: Tensor | None,
    *,
    one_sided: bool = False,
    rng: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP (Gulrajani et al. 2017): E[(||grad_x D(x_hat)||_2 - 1)^2] on x_hat = a real + (1 - a) fake.

    a ~ U[0, 1) per sample, drawn from rng (same device as the images). one_sided penalizes only norms
    above 1, E[relu(||grad|| - 1)^2]: the variant the paper sets aside and Petzka et al. 2018 argue for.
    A D with BatchNorm sees a batch of interpolates here, which the paper advises against (use layer norm).
    """
    alpha = torch.rand((real.size(0),) + (1,) * (real.dim() - 1), generator=rng, device=real.device, dtype=real.dtype)
    # (with packing each sample of a pack gets its own alpha, and the norm is the pack's: D's input is the pack)
    x_hat = torch.lerp(fake.detach().to(real.dtype), real.detach(), alpha)  # alpha * real + (1 - alpha) * fake
    norm = torch.linalg.vector_norm(_input_gradient(D, x_hat, labels), dim=1)
    excess = F.relu(norm - 1) if one_sided else norm - 1
    return excess.square().mean()


def r1_penalty(D: Critic, real: Tensor, labels: Tensor | None) -> Tensor:
    """R1 (Mescheder et al. 2018, "Which training methods for GANs do actually converge?"): E[||grad_x D(x)||^2].

    On real data. The step adds gamma/2 * R1; lazily (StyleGAN2, Karras et al. 2020) every k steps as
    gamma/2 * k * R1.
    """
    return _input_gradient(D, real, labels).square().sum(1).mean()


def r2_penalty(D: Critic, fake: Tensor, labels: Tensor | None) -> Tensor:
    """R2 (Mescheder et al. 2018): E[||grad_x D(x)||^2] on G's samples, taken as fixed images (no gradient to G)."""
    return _input_gradient(D, fake, labels).square().sum(1).mean()


@torch.no_grad()
def clip_weights_(D: nn.Module, c: float) -> None:
    """WGAN's crude Lipschitz constraint (Arjovsky et al. 2017): clamp every parameter of D to [-c, c], in place."""
    for p in D.parameters():
        p.clamp_(-c, c)


def add_instance_noise(x: Tensor, sigma: float, rng: torch.Generator | None) -> Tensor:
    """x + N(0, sigma^2) per element (Sønderby et al. 2017): blurs D's view so real and fake overlap."""
    if sigma <= 0:
        return x
    return x + sigma * torch.randn(x.shape, generator=rng, device=x.device, dtype=x.dtype)


def annealed(sigma: float, step: int, steps: int) -> float:
    """sigma decayed linearly from its full value at step 0 to 0 at `steps` (and 0 after)."""
    return sigma * max(0.0, 1.0 - step / steps) if steps > 0 else 0.0
