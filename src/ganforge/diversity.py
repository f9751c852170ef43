"""Generator-side diversity terms: the mode-seeking loss (Mao et al., CVPR 2019, arXiv:1903.05628).

A conditional G tends to ignore part of its noise and draw one picture per condition. The mode-seeking
term asks two latents of the same condition to give images as far apart as the latents are:
minimize 1 / (d_image / d_z + eps), with d the mean absolute difference (the paper's L1 distances).
Pairs come from the batch G already drew (no extra forward): samples that share a label, paired in
batch order (any two samples when G is unconditional).
"""

from __future__ import annotations

import torch
from torch import Tensor

EPS = 1e-5  # keeps the term finite when two samples coincide


def same_label_pairs(labels: Tensor | None, n: int) -> tuple[Tensor, Tensor]:
    """Indices (a, b) of disjoint pairs of samples that share a label; halves of the batch when unlabelled."""
    if labels is None:
        half = n // 2
        return torch.arange(half), torch.arange(half, 2 * half)
    sorted_labels, order = torch.sort(labels, stable=True)
    position = torch.arange(len(order), device=labels.device)
    run_start = torch.searchsorted(sorted_labels, sorted_labels)  # where each sample's label begins
    run_end = torch.searchsorted(sorted_labels, sorted_labels, right=True)
    first = position[((position - run_start) % 2 == 0) & (position + 1 < run_end)]  # 1st with 2nd, 3rd with 4th ...
    return order[first], order[first + 1]


def mode_seeking_loss(fake: Tensor, z: Tensor, labels: Tensor | None) -> Tensor:
    """1 / (mean |G(z_a) - G(z_b)| / mean |z_a - z_b| + EPS) over same-label pairs; 0 when there are none."""
    a, b = same_label_pairs(labels, fake.size(0))
    if not len(a):
        return fake.new_zeros((), dtype=torch.float32)
    a, b = a.to(fake.device), b.to(fake.device)
    d_image = (fake[a].float() - fake[b].float()).abs().mean()
    d_z = (z[a].float() - z[b].float()).abs().mean()
    return 1 / (d_image / d_z + EPS)
