"""GAN losses as pure functions of discriminator logits (numerically stable: no sigmoid-then-log).

Notation: D(x) = sigmoid(l(x)) is the probability that x is real; l is the logit D returns.
The identities used are log D(x) = -softplus(-l) and log(1 - D(x)) = -softplus(l).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ganforge.config import LossKind


def d_loss(logits_real: Tensor, logits_fake: Tensor, *, kind: LossKind) -> Tensor:
    """The discriminator's loss, to be minimized.

    nonsaturating / minimax (the same D objective, Goodfellow et al. 2014):
        L_D = -E[log D(x)] - E[log(1 - D(G(z)))] = E[softplus(-l_real)] + E[softplus(l_fake)]
    hinge (Lim & Ye 2017; Miyato et al. 2018):
        L_D = E[relu(1 - l_real)] + E[relu(1 + l_fake)]
    """
    if kind == "hinge":
        return F.relu(1 - logits_real).mean() + F.relu(1 + logits_fake).mean()
    return F.softplus(-logits_real).mean() + F.softplus(logits_fake).mean()


def g_loss(logits_fake: Tensor, *, kind: LossKind) -> Tensor:
    """The generator's loss, to be minimized.

    minimax (the article's formula): G minimizes the value V(D, G) = E[log D(x)] + E[log(1 - D(G(z)))],
        whose G-dependent term gives L_G = E[log(1 - D(G(z)))] = -E[softplus(l_fake)].
        Its gradient vanishes when D confidently rejects the fakes (early training).
    nonsaturating (the article's fix): L_G = -E[log D(G(z))] = E[softplus(-l_fake)].
    hinge: L_G = -E[l_fake].
    """
    if kind == "minimax":
        return -F.softplus(logits_fake).mean()
    if kind == "hinge":
        return -logits_fake.mean()
    return F.softplus(-logits_fake).mean()
