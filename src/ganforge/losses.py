"""GAN losses as pure functions of discriminator logits (numerically stable: no sigmoid-then-log).

Notation: D(x) = sigmoid(l(x)) is the probability that x is real; l is the logit D returns, and
l_real, l_fake are D's logits on a batch of data and of G's samples. The identities used are
log D(x) = -softplus(-l) and log(1 - D(x)) = -softplus(l). Means are over the batch. A D with a coarse
critic (ModelConfig.coarse_d) gives logits (B, 2): each column is scored as its own D, and the loss is
(L_main + w L_coarse) / 2, w the coarse weight (1: the plain mean of the two).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganforge.config import LossKind

SMOOTHABLE = ("nonsaturating", "minimax", "lsgan", "ragan")  # the kinds with a real-data target to smooth


def _bce_real(logits: Tensor, target: float) -> Tensor:
    """BCE of logits against the target `target` for real: -t log D - (1 - t) log(1 - D), elementwise."""
    if target == 1.0:  # the common case: one softplus, and exactly the unsmoothed loss
        return F.softplus(-logits)
    return target * F.softplus(-logits) + (1 - target) * F.softplus(logits)


def d_loss(
    logits_real: Tensor, logits_fake: Tensor, *, kind: LossKind, real_label: float = 1.0, coarse_weight: float = 1.0
) -> Tensor:
    """The discriminator's loss, to be minimized.

    nonsaturating / minimax (the same D objective; Goodfellow et al. 2014, "Generative Adversarial Nets"):
        L_D = -E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-l_real)] + E[softplus(l_fake)]
    hinge (Lim & Ye 2017, "Geometric GAN"; Miyato et al. 2018):
        L_D = E[relu(1 - l_real)] + E[relu(1 + l_fake)]
    lsgan (Mao et al. 2017, "Least Squares GANs", 0-1 coding):
        L_D = 1/2 E[(l_real - 1)^2] + 1/2 E[l_fake^2]
    wgan (Arjovsky et al. 2017, "Wasserstein GAN"; D is the critic):
        L_D = E[l_fake] - E[l_real]
    ragan (Jolicoeur-Martineau 2018, "The relativistic discriminator"), a = l_real - E[l_fake], b = l_fake - E[l_real]:
        L_D = E[softplus(-a)] + E[softplus(b)]

    Args:
        real_label: one-sided label smoothing (Salimans et al. 2016): D's target for real data, 1.0 for none.
            nonsaturating / minimax / ragan: the real term becomes the BCE with target t,
            t * softplus(-l) + (1 - t) * softplus(l) (with a in place of l for ragan).
            lsgan: the real target becomes t, 1/2 E[(l_real - t)^2].
            hinge / wgan have no target to smooth: real_label != 1 raises ValueError.
    """
    if real_label != 1.0 and kind not in SMOOTHABLE:
        raise ValueError(f"label smoothing applies to the {', '.join(SMOOTHABLE)} losses, not {kind!r}")
    if logits_real.dim() == 2:  # the main and the coarse critic, each its own D
        main, coarse = (d_loss(logits_real[:, i], logits_fake[:, i], kind=kind, real_label=real_label) for i in (0, 1))
        return (main + coarse_weight * coarse) / 2
    if kind in ("nonsaturating", "minimax"):
        return _bce_real(logits_real, real_label).mean() + F.softplus(logits_fake).mean()
    if kind == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    if kind == "lsgan":
        return 0.5 * (logits_real - real_label).square().mean() + 0.5 * logits_fake.square().mean()
    if kind == "wgan":
        return logits_fake.mean() - logits_real.mean()
    if kind == "ragan":
        a = logits_real - logits_fake.mean()
        b = logits_fake - logits_real.mean()
        return _bce_real(a, real_label).mean() + F.softplus(b).mean()
    raise ValueError(f"unknown loss kind {kind!r}")


def g_loss(
    logits_fake: Tensor, *, kind: LossKind, logits_real: Tensor | None = None, coarse_weight: float = 1.0
) -> Tensor:
    """The generator's loss, to be minimized.

    minimax (the article's formula): G minimizes the value V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))],
        whose G-dependent term gives L_G = E[log(1 - D(G(z)))] = -E[softplus(l_fake)].
        Its gradient vanishes when D confidently rejects the fakes (early training).
    nonsaturating (the article's fix): L_G = -E[log D(G(z))] = E[softplus(-l_fake)].
    hinge: L_G = -E[l_fake].
    lsgan: L_G = 1/2 E[(l_fake - 1)^2].
    wgan: L_G = -E[l_fake].
    ragan (needs logits_real, D's logits on the real batch; they may be detached, since G reaches both
        terms through l_fake): with a and b as in d_loss, L_G = E[softplus(-b)] + E[softplus(a)].
    """
    if logits_fake.dim() == 2:  # the main and the coarse critic, each its own D
        main, coarse = (
            g_loss(logits_fake[:, i], kind=kind, logits_real=None if logits_real is None else logits_real[:, i])
            for i in (0, 1)
        )
        return (main + coarse_weight * coarse) / 2
    if kind == "minimax":
        return -F.softplus(logits_fake).mean()
    if kind == "nonsaturating":
        return F.softplus(-logits_fake).mean()
    if kind in ("hinge", "wgan"):
        return -logits_fake.mean()
    if kind == "lsgan":
        return 0.5 * (logits_fake - 1).square().mean()
    if kind == "ragan":
        if logits_real is None:
            raise ValueError("the ragan G loss compares fakes with reals: pass logits_real")
        a = logits_real - logits_fake.mean()
        b = logits_fake - logits_real.mean()
        return F.softplus(-b).mean() + F.softplus(a).mean()
    raise ValueError(f"unknown loss kind {kind!r}")


def class_loss(class_logits: Tensor, labels: Tensor) -> Tensor:
    """AC-GAN's auxiliary classifier loss (Odena et al. 2017): cross-entropy of D's class logits (B, K), labels (B,).

    Both D (on real and fake) and G (on fake) add it to their adversarial loss.
    """
    return F.cross_entropy(class_logits, labels)
