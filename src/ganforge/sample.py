"""Seeds -> latents -> images: sampling, interpolation and provenance for what we generate.

Latents come from numpy's PCG64 stream seeded by `seed`, so the first k of n samples are the same
for any n, on any device: a seed names the same images everywhere.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from ganforge.errors import ConfigError, GanforgeError
from ganforge.images import (
    JPEG_SUFFIXES,
    PNG_SUFFIXES,
    grid_nrow,
    is_points,
    label_rows,
    make_grid,
    provenance,
    save_image,
    save_toy_scatter,
    to_uint8,
)
from ganforge.io import DiskFullError
from ganforge.marking import FROM_GENERATOR, WatermarkSetting, make_marker
from ganforge.models import Generator

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
    bad = sorted({int(c) for c in out[(out < 0) | (out >= num_classes)].tolist()})
    if bad:
        shown = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
        raise ConfigError(f"class must be in 0..{num_classes - 1} (this generator has {num_classes}); got {shown}")
    return out


def labels_in_mix(counts: Sequence[int] | np.ndarray, n: int) -> Tensor:
    """n class labels (n,) int64 in the proportions of `counts` (one per class, not all 0).

    Each class gets its share of the n to within one (largest remainders), spread evenly through the n (the j-th
    of a class's m labels sits at about (j + 1/2) / m of the way), so every stretch of labels is mixed too.
    """
    weights = np.asarray(counts, dtype=np.float64)
    shares = weights / weights.sum() * n
    quota = np.floor(shares).astype(np.int64)
    quota[np.argsort(-(shares - quota), kind="stable")[: n - int(quota.sum())]] += 1
    where = np.concatenate([(np.arange(m) + 0.5) / m for m in quota if m] or [np.zeros(0)])
    labels = np.repeat(np.arange(len(quota)), quota)[np.argsort(where, kind="stable")]
    return torch.from_numpy(labels.astype(np.int64))


def data_labels(G: Generator, n: int) -> Tensor | None:
    """Labels for n samples of a conditional G in its training data's class mix, as evaluation draws them.

    The mix is provenance's `class_counts` (recorded by training), drawn by `labels_in_mix`. A G without recorded
    counts cycles through the classes, as `class_labels` does.
    """
    num_classes = G.cfg.num_classes
    counts = (getattr(G, "provenance", None) or {}).get("class_counts")
    if num_classes == 0 or not counts or len(counts) != num_classes or min(counts) < 0 or sum(counts) <= 0:
        return class_labels(G, n, None)
    return labels_in_mix(counts, n)


def class_text(G: Generator, labels: int | list[int] | Tensor | None) -> str | None:
    """The class as provenance records it: the class, "cycle" for None on a conditional G, None if unconditional."""
    if G.cfg.num_classes == 0:
        return None
    if labels is None:
        return "cycle"
    if isinstance(labels, int):
        return str(labels)
    return ",".join(str(int(c)) for c in torch.as_tensor(labels).reshape(-1).tolist())


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


def sample_per_class(G: Generator, n: int, *, seed: int = 0, truncation: float = 1.0) -> Tensor:
    """n images of every class, class-major: (K * n, C, H, W); column j of every class uses latent j of `seed`."""
    num_classes = G.cfg.num_classes
    if num_classes == 0:
        raise ConfigError("this generator is unconditional, so it has no classes to put in rows; drop --per-class")
    if n <= 0:
        raise ConfigError(f"number of samples a class must be positive; got {n}")
    z = latents(n, G.cfg.z_dim, seed=seed, truncation=truncation).repeat(num_classes, 1)
    return generate(G, z, torch.arange(num_classes).repeat_interleave(n))


def generator_modes(G: Generator) -> tuple[Tensor, float] | None:
    """The mode centers and std of the toy data a 2-D generator was trained on, from its provenance."""
    data = str((getattr(G, "provenance", None) or {}).get("data") or "")
    if not data.startswith("toy:"):
        return None
    from ganforge.data.toy import toy_modes

    try:
        return toy_modes(data)
    except GanforgeError:  # a toy set this version does not know: plot the points alone
        return None


def _is_folder_target(out: str) -> bool:
    return out.endswith(("/", "\\")) or Path(out).is_dir()


def check_out(out: str | Path, *, points: bool = False) -> None:
    """Refuse an output path that `save_samples` cannot write: empty, or a file type it does not write."""
    out_str = str(out)
    if not out_str.strip():
        raise ConfigError("--out is empty; pass FILE.png (or .jpg) for a grid, or DIR/ for single images")
    if _is_folder_target(out_str):
        if points:
            raise ConfigError(f"--out {out_str}: a 2-D model's samples are one scatter plot; pass FILE.png")
        return
    suffix = Path(out_str).suffix.lower()
    allowed = PNG_SUFFIXES if points else PNG_SUFFIXES + JPEG_SUFFIXES
    if suffix not in allowed:
        raise ConfigError(
            f"--out {out_str}: ganforge writes {' or '.join(allowed)} files; "
            "pass FILE.png for a grid" + ("" if points else ", FILE.jpg for a JPEG grid, or DIR/ for single images")
        )


def default_out(seed: int, folder: str | Path = ".") -> str:
    """`sample_seed<SEED>.png` in `folder`, or the first of `-2`, `-3`, ... that does not exist: never an overwrite."""
    base = Path(folder) / f"sample_seed{seed}"
    path, n = base.with_suffix(".png"), 1
    while path.exists():
        n += 1
        path = base.parent / f"{base.name}-{n}.png"
    return str(path)


RUN_FILES = ("samples.png", "report.html", "config.json", "metrics.jsonl", "eval.json", "generator.safetensors")


def refuse_run_files(out: str | Path) -> None:
    """Refuse to write over a run directory's own files (its final grid, grids over time, config, ...)."""
    path = Path(out)
    for run_dir, name in ((path.parent, path.name), (path.parent.parent, f"{path.parent.name}/{path.name}")):
        is_run = (run_dir / "config.json").is_file() and (run_dir / "metrics.jsonl").is_file()
        if is_run and (name in RUN_FILES or name.startswith("samples/")):
            raise ConfigError(
                f"--out {out} is a file of the run in {run_dir} (its training output); pass another --out"
            )


def save_samples(
    G: Generator,
    out: str | Path,
    n: int,
    *,
    seed: int = 0,
    truncation: float = 1.0,
    labels: int | list[int] | None = None,
    nrow: int | None = None,
    per_class: bool = False,
    watermark: WatermarkSetting = True,
) -> list[Path]:
    """Write samples with their provenance; returns the paths written.

    `out` is a grid file (.png, or .jpg/.jpeg for JPEG), or a folder (a trailing '/' or an existing
    folder) for one PNG an image. per_class: a grid with one row for each class of a conditional G,
    n images a row, the same latents in every row. A 2-D (toy) generator writes a scatter plot of
    its n points over the data's modes instead (a plot, not an image: no watermark).
    watermark: True marks every image (a grid's tiles one by one) with the default key (made on first
    use), bytes with that key, False not at all; the payload is the generator's sha256.
    """
    points = is_points(G.cfg.shape)
    check_out(out, points=points)
    is_folder = _is_folder_target(str(out))
    if nrow is not None and nrow < 1:
        raise ConfigError(f"--nrow (images a row) must be at least 1; got {nrow}")
    if per_class and labels is not None:
        raise ConfigError("--per-class draws every class; drop --class")
    if per_class and is_folder:
        raise ConfigError(f"--out {out}: --per-class writes one grid; pass FILE.png")
    sha = str(getattr(G, "sha256", None) or "unknown")
    out = Path(out)
    if points:
        if per_class:
            raise ConfigError("a 2-D model's samples are one scatter plot; drop --per-class")
        pts = sample(G, n, seed=seed, truncation=truncation, labels=labels).reshape(n, 2)
        text = provenance(
            generator_sha256=sha, seed=seed, index=f"0-{n - 1}", truncation=truncation, label=class_text(G, labels),
            extra={"ganforge:plot": "scatter of 2-D points"},
        )  # fmt: skip
        save_toy_scatter(pts, out, generator_modes(G), text, title=f"seed {seed}")
        return [out]
    label: str | None = "per-class"
    if per_class:
        images = sample_per_class(G, n, seed=seed, truncation=truncation)
        nrow = n
    else:
        images = sample(G, n, seed=seed, truncation=truncation, labels=labels)
        label = class_text(G, labels)
    marker = make_marker(watermark, sha, FROM_GENERATOR)
    pixels = to_uint8(images)
    marked, mark_text = marker.apply(pixels), marker.text(*pixels.shape[1:3])
    if is_folder:
        classes = class_labels(G, n, labels)  # a single image records its own class
        paths: list[Path] = []
        try:
            for i, one in enumerate(marked):
                path = out / f"seed{seed}_{i:05d}.png"
                one_label = None if classes is None else int(classes[i])
                text = provenance(
                    generator_sha256=sha, seed=seed, index=i, truncation=truncation, label=one_label, extra=mark_text
                )
                save_image(one, path, text)
                paths.append(path)
        except DiskFullError as e:  # a partial set is no result: take back what this call wrote
            for path in paths:
                path.unlink(missing_ok=True)
            raise DiskFullError(f"{e} (removed the {len(paths)} of {n} images written)") from e
        return paths
    nrow = grid_nrow(images.size(0), nrow)
    text = provenance(
        generator_sha256=sha, seed=seed, index=f"0-{n - 1}", truncation=truncation, label=label, nrow=nrow,
        extra=mark_text,
    )  # fmt: skip
    grid = make_grid(marked, nrow=nrow)
    if per_class:  # one row a class, named on the left (the dataset's class names where the generator has them)
        names = class_names(G)
        grid = label_rows(grid, names)
        text["ganforge:rows"] = json.dumps(names)
    save_image(grid, out, text)
    return [out]


def class_names(G: Generator) -> list[str]:
    """The names of a conditional G's classes: from its training data where recorded, else "0", "1", ..."""
    recorded = (getattr(G, "provenance", None) or {}).get("class_names") or []
    k = G.cfg.num_classes
    return [str(name) for name in recorded] if len(recorded) == k else [str(i) for i in range(k)]


LATENTS_FILE = "latents.npy"  # what `ganforge project` writes: (N, z_dim) float32
CLASSES_FILE = "classes.npy"  # beside it, for a conditional G: (N,) int64


def load_latents(path: str | Path, G: Generator, label: int | None = None) -> tuple[Tensor, Tensor | None]:
    """A latents file (N, z_dim) and its classes (classes.npy beside it, or `label` for all) -> (z, labels)."""
    path = Path(path)
    z = _read_npy(path, "latents")
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != G.cfg.z_dim or not np.issubdtype(z.dtype, np.floating) or len(z) == 0:
        raise ConfigError(
            f"--latents {path} holds an array of shape {z.shape} ({z.dtype}); this generator needs (N, {G.cfg.z_dim}) "
            "floats, as `ganforge project` writes for it"
        )
    if not np.isfinite(z).all():
        raise ConfigError(f"--latents {path} holds NaN or infinite values; pass the latents `ganforge project` wrote")
    if G.cfg.num_classes == 0 or label is not None:
        return torch.from_numpy(z.astype(np.float32)), class_labels(G, len(z), label)
    classes_path = path.with_name(CLASSES_FILE)
    if not classes_path.is_file():
        raise ConfigError(
            f"this generator is conditional and there is no {CLASSES_FILE} beside {path}; pass --class K for all"
        )
    classes = _read_npy(classes_path, "classes").reshape(-1)
    if not np.issubdtype(classes.dtype, np.integer) or len(classes) != len(z):
        raise ConfigError(
            f"{classes_path} holds {len(classes)} {classes.dtype} values for {len(z)} latents; "
            f"it must hold one integer class a latent, as `ganforge project` writes"
        )
    return torch.from_numpy(z.astype(np.float32)), class_labels(G, len(z), classes.astype(np.int64).tolist())


def _read_npy(path: Path, what: str) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)  # never unpickle code
    except FileNotFoundError as e:
        raise ConfigError(f"no {what} file at {path}; pass the {LATENTS_FILE} that `ganforge project` wrote") from e
    except (ValueError, OSError, EOFError) as e:
        raise ConfigError(f"{path} is not a .npy array of {what} ({e}); pass a file `ganforge project` wrote") from e


def save_latent_images(
    G: Generator,
    out: str | Path,
    z: Tensor,
    labels: Tensor | None,
    *,
    steps: int | None = None,
    source: str = LATENTS_FILE,
    nrow: int | None = None,
    watermark: WatermarkSetting = True,
) -> list[Path]:
    """Render given latents (N, z_dim): a grid (or one PNG a latent with a folder `out`), with provenance.

    steps: instead, interpolate (slerp) from each latent to the next in `steps` frames: one grid row a pair.
    A conditional G holds one class along a path, so the latents of a pair must share theirs.
    """
    if is_points(G.cfg.shape):
        raise ConfigError("--latents renders images; this generator makes 2-D points")
    check_out(out)
    sha = str(getattr(G, "sha256", None) or "unknown")
    is_folder = _is_folder_target(str(out))
    extra = {"ganforge:latents": source}
    if steps is not None:
        if steps < 2 or len(z) < 2:
            raise ConfigError(f"interpolation needs --interpolate >= 2 and two latents or more; got {steps}, {len(z)}")
        if labels is not None and int(labels.unique().numel()) > 1:
            shown = ", ".join(str(int(c)) for c in labels.tolist()[:6])
            raise ConfigError(f"these latents have different classes ({shown}); a path holds one class: pass --class K")
        t = torch.linspace(0, 1, steps)
        z = torch.cat([slerp(z[i], z[i + 1], t) for i in range(len(z) - 1)])
        labels = None if labels is None else labels[:1].expand(len(z)).clone()
        nrow = steps
        extra["ganforge:interpolation"] = f"slerp between consecutive latents in {steps} steps"
    images = generate(G, z, labels)
    label = class_text(G, labels)
    marker = make_marker(watermark, sha, FROM_GENERATOR)  # as save_samples: every image marked, tiles one by one
    pixels = to_uint8(images)
    marked = marker.apply(pixels)
    extra |= marker.text(*pixels.shape[1:3])
    if is_folder:
        paths = []
        for i, one_image in enumerate(marked):
            path = Path(out) / f"latent_{i:05d}.png"
            one = None if labels is None else int(labels[i])
            save_image(one_image, path, provenance(generator_sha256=sha, index=i, label=one, extra=extra))
            paths.append(path)
        return paths
    nrow = grid_nrow(len(images), nrow)
    text = provenance(generator_sha256=sha, index=f"0-{len(images) - 1}", label=label, nrow=nrow, extra=extra)
    save_image(make_grid(marked, nrow=nrow), out, text)
    return [Path(out)]
