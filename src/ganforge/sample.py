"""Seeds -> latents -> images: sampling, interpolation and provenance for what we generate.

Latents come from numpy's PCG64 stream seeded by `seed`, so the first k of n samples are the same
for any n, on any device: a seed names the same images everywhere.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError
from ganforge.images import make_grid, save_png, to_uint8
from ganforge.models import Generator
from ganforge.version import __version__

MAX_SEED = 2**63 - 1


def latents(n: int, z_dim: int, *, seed: int = 0, truncation: float = 1.0) -> Tensor:
    """(n, z_dim) float32 N(0, 1) noise, scaled by `truncation` (psi in (0, 1]; 1 leaves it as is)."""
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"seed must be in 0..2^63-1; got {seed}")
    if not 0 < truncation <= 1:
        raise ConfigError(f"truncation must be in (0, 1]; got {truncation}")
    z = np.random.Generator(np.random.PCG64(seed)).standard_normal((n, z_dim), dtype=np.float32)
    return torch.from_numpy(z) * truncation


def class_labels(G: Generator, n: int, labels: int | list[int] | Tensor | None) -> Tensor | None:
    """Labels for a conditional G: one class for all, a list, or (None) cycling through the classes."""
    num_classes = G.cfg.num_classes
    if num_classes == 0:
        if labels is not None:
            raise ConfigError("this generator is unconditional; drop the class")
        return None
    if labels is None:
        return torch.arange(n) % num_classes
    if isinstance(labels, int):
        out = torch.full((n,), labels, dtype=torch.long)
    else:
        out = torch.as_tensor(labels, dtype=torch.long).reshape(-1)
    if out.numel() != n:
        raise ConfigError(f"got {out.numel()} labels for {n} samples; pass one label or one per sample")
    if out.min() < 0 or out.max() >= num_classes:
        raise ConfigError(f"class must be in 0..{num_classes - 1}; got {out.tolist()}")
    return out


# G always runs on chunks of exactly this many rows (the last one zero-padded): CPU matmul kernels
# pick their blocking from the batch size, so one shape keeps a seed's images bit-identical whether
# they are drawn alone, among thousands, or batched with other requests by the server.
GENERATE_CHUNK = 32


@torch.no_grad()
def generate(G: Generator, z: Tensor, labels: Tensor | None = None, *, chunk: int = GENERATE_CHUNK) -> Tensor:
    """Run G on latents (n, z_dim) in fixed chunks; returns (n, C, H, W) float32 on the CPU."""
    device = next(G.parameters()).device
    n = z.size(0)
    padding = -n % chunk
    if padding:
        z = torch.cat([z, z.new_zeros(padding, z.size(1))])
        if labels is not None:
            labels = torch.cat([labels, labels.new_zeros(padding)])
    out = []
    for start in range(0, z.size(0), chunk):
        y = None if labels is None else labels[start : start + chunk].to(device)
        out.append(G(z[start : start + chunk].to(device), y).float().cpu())
    return torch.cat(out)[:n] if out else torch.empty(0, *G.cfg.shape)


def sample(
    G: Generator,
    n: int,
    *,
    seed: int = 0,
    truncation: float = 1.0,
    labels: int | list[int] | Tensor | None = None,
) -> Tensor:
    """Draw n images from G: (n, C, H, W) in [-1, 1], the same for the same seed.

    Example:
        >>> images = ganforge.sample(ganforge.load_generator("runs/seed"), 25, seed=7)
    """
    if n <= 0:
        raise ConfigError(f"number of samples must be positive; got {n}")
    z = latents(n, G.cfg.z_dim, seed=seed, truncation=truncation)
    return generate(G, z, class_labels(G, n, labels))


def slerp(a: Tensor, b: Tensor, t: Tensor) -> Tensor:
    """Spherical interpolation between latents a and b (each (z_dim,)) at fractions t (T,) -> (T, z_dim)."""
    a_unit, b_unit = a / a.norm(), b / b.norm()
    omega = torch.acos((a_unit * b_unit).sum().clamp(-1 + 1e-7, 1 - 1e-7))
    if omega.abs() < 1e-4:  # nearly parallel: linear is exact enough
        return torch.lerp(a, b, t[:, None])
    t = t[:, None]
    return (torch.sin((1 - t) * omega) * a + torch.sin(t * omega) * b) / torch.sin(omega)


def interpolate(
    G: Generator,
    seed_a: int,
    seed_b: int,
    steps: int,
    *,
    truncation: float = 1.0,
    label: int | None = None,
) -> Tensor:
    """Images along the great circle between the latents of two seeds: (steps, C, H, W)."""
    if steps < 2:
        raise ConfigError(f"interpolation needs at least 2 steps; got {steps}")
    z_a = latents(1, G.cfg.z_dim, seed=seed_a, truncation=truncation)[0]
    z_b = latents(1, G.cfg.z_dim, seed=seed_b, truncation=truncation)[0]
    z = slerp(z_a, z_b, torch.linspace(0, 1, steps))
    return generate(G, z, class_labels(G, steps, label))


def provenance_text(G: Generator, *, seed: int, index: int | str) -> dict[str, str]:
    """PNG text chunks marking an image as synthetic and naming what made it."""
    return {
        "Software": f"ganforge {__version__}",
        "Source": "ganforge generator",
        "ganforge:generator_sha256": str(getattr(G, "sha256", "unknown")),
        "ganforge:seed": str(seed),
        "ganforge:index": str(index),
        "ganforge:synthetic": "true",
        "Comment": "synthetic image generated by a GAN (ganforge); not a photograph of a real scene",
    }


def save_samples(
    G: Generator,
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    truncation: float = 1.0,
    labels: int | list[int] | None = None,
    nrow: int | None = None,
) -> list[Path]:
    """Write a grid PNG to `out`, or one PNG an image when `out` ends with '/' or is a folder."""
    images = sample(G, n, seed=seed, truncation=truncation, labels=labels)
    out_str = str(out)
    out = Path(out)
    if out_str.endswith(("/", "\\")) or out.is_dir():
        paths = []
        for i, pixels in enumerate(to_uint8(images)):
            path = out / f"seed{seed}_{i:05d}.png"
            save_png(pixels, path, provenance_text(G, seed=seed, index=i))
            paths.append(path)
        return paths
    save_png(make_grid(images, nrow=nrow), out, provenance_text(G, seed=seed, index=f"0-{n - 1}"))
    return [out]
