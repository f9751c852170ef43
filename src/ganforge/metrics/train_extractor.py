"""Train (or check) the shipped feature extractors: `python -m ganforge.metrics.train_extractor mnist`.

MNIST: trained on the 5,000 `mnist-sample` digits with random affine augmentation, scored on the
10,000-digit MNIST test set. Fashion-MNIST: trained on its 60,000 training images (random
horizontal flips and 2-pixel shifts), scored on its 10,000 test images. emoji (the colour extractor): trained
on the emoji training split with group, subgroup and skin-tone heads (see train_colour.py), scored on
the 367 test-split emoji. Training is seeded and uses
deterministic kernels on one thread, so the same machine gets the same weights.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from torch import Tensor

from ganforge.io import atomic_path
from ganforge.metrics import train_colour
from ganforge.metrics.extractors import (
    EXTRACTOR_FORMAT,
    SHA256SUMS,
    SHIPPED,
    WEIGHTS_DIR,
    DigitNet,
    file_sha256,
    load_extractor,
    recorded_hashes,
)

log = logging.getLogger(__name__)

MNIST_CLASSES = [str(d) for d in range(10)]
FASHION_CLASSES = [
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
]


@dataclass(frozen=True)
class Recipe:
    """How one extractor is trained: data specs, epochs, and which augmentation."""

    train_spec: str
    train_split: str
    test_spec: str
    epochs: int
    augment: str  # "affine" (digits), "flip-shift" (clothes) or "colour" (emoji: train_colour.py)
    class_names: list[str]
    lr: float = 2e-3
    batch_size: int = 64
    weight_decay: float = 5e-4


RECIPES = {
    "mnist": Recipe("mnist-sample", "all", "mnist", 60, "affine", MNIST_CLASSES),
    "fashion-mnist": Recipe("fashion-mnist", "train", "fashion-mnist", 4, "flip-shift", FASHION_CLASSES, lr=1e-3),
    "emoji": Recipe("emoji", "train", "emoji", train_colour.EPOCHS, "colour", [], lr=train_colour.LR),
}


def random_affine(x: Tensor, rng: torch.Generator) -> Tensor:
    """Random rotation (+-12 deg), scale (0.9-1.1), shear (+-0.15) and shift (+-2.5 px) of (B, 1, 28, 28)."""
    b = x.size(0)

    def uniform(lo: float, hi: float) -> Tensor:
        return torch.rand(b, generator=rng) * (hi - lo) + lo

    angle, scale, shear = uniform(-12, 12) * math.pi / 180, uniform(0.9, 1.1), uniform(-0.15, 0.15)
    shift = (torch.rand(b, 2, generator=rng) * 2 - 1) * (2.5 / 14)  # grid coordinates: 14 px per unit
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    theta = torch.stack([torch.stack([cos, -sin + shear, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x + 1, grid, mode="bilinear", padding_mode="zeros", align_corners=False) - 1  # pad black


def flip_shift(x: Tensor, rng: torch.Generator) -> Tensor:
    """Random horizontal flips and integer shifts of up to 2 px (padding with background)."""
    flip = torch.rand(x.size(0), generator=rng) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = F.pad(x, (2, 2, 2, 2), value=-1.0)
    dx, dy = torch.randint(0, 5, (2,), generator=rng).tolist()
    return padded[:, :, dy : dy + 28, dx : dx + 28]


def load_split(spec: str, split: str, data_dir: str | None) -> tuple[Tensor, Tensor]:
    """(images (N, C, H, W) float in [-1, 1], labels (N,)) of a labelled data set."""
    from ganforge.data import load_dataset, to_float

    ds = load_dataset(spec, split=split, data_dir=data_dir)
    if ds.labels is None:
        raise SystemExit(f"{spec} ({split}) has no labels; the extractor needs them")
    log.info("%s %s: %d images from %s", spec, split, len(ds.labels), ds.source)
    return to_float(ds.in_memory()).float(), ds.labels.long()


@torch.no_grad()
def accuracy(net: torch.nn.Module, images: Tensor, labels: Tensor, batch_size: int = 1000) -> float:
    net.eval()
    correct = 0
    for start in range(0, images.size(0), batch_size):
        _, logits = net(images[start : start + batch_size])
        correct += int((logits.argmax(1) == labels[start : start + batch_size]).sum())
    return correct / images.size(0)


def train(
    name: str, *, data_dir: str | None = None, seed: int = 0, epochs: int | None = None
) -> tuple[torch.nn.Module, dict]:
    """Train one extractor; returns the net and its metadata (test accuracy included)."""
    recipe = RECIPES[name]
    if recipe.augment == "colour":
        return train_colour.train(seed=seed, epochs=epochs)
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    rng = torch.Generator().manual_seed(seed)
    images, labels = load_split(recipe.train_spec, recipe.train_split, data_dir)
    test_images, test_labels = load_split(recipe.test_spec, "test", data_dir)
    epochs = epochs or recipe.epochs

    net = DigitNet(num_classes=len(recipe.class_names))
    opt = torch.optim.AdamW(net.parameters(), lr=recipe.lr, weight_decay=recipe.weight_decay)
    steps = epochs * math.ceil(images.size(0) / recipe.batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=steps, pct_start=0.15)
    augment = random_affine if recipe.augment == "affine" else flip_shift
    t0 = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(images.size(0), generator=rng)
        for start in range(0, images.size(0), recipe.batch_size):
            idx = order[start : start + recipe.batch_size]
            if idx.numel() < 2:  # BatchNorm needs two samples
                continue
            x = augment(images[idx], rng)
            _, logits = net(x)
            loss = F.cross_entropy(logits, labels[idx], label_smoothing=0.05)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        log.info("epoch %d/%d  loss %.4f  %.0f s", epoch + 1, epochs, loss.item(), time.perf_counter() - t0)
    acc = accuracy(net, test_images, test_labels)
    metadata = {
        "format": EXTRACTOR_FORMAT,
        "name": name,
        "arch": "DigitNet (conv 32-64-128, 128-d features)",
        "class_names": json.dumps(recipe.class_names),
        "trained_on": f"{recipe.train_spec} ({recipe.train_split}, {images.size(0)} images, augment {recipe.augment})",
        "test_accuracy": f"{acc:.4f}",
        "tested_on": f"{recipe.test_spec} (test, {test_images.size(0)} images)",
        "epochs": str(epochs),
        "seed": str(seed),
        "torch_version": torch.__version__,
    }
    return net, metadata


def write_weights(net: torch.nn.Module, metadata: dict, out_dir: Path) -> Path:
    """Write `<name>.safetensors` and its line in SHA256SUMS, both atomically."""
    path = out_dir / SHIPPED[metadata["name"]]
    tensors = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(tensors, str(tmp), metadata=metadata)
        tmp.chmod(0o644)  # package data: readable by every user
    sums = recorded_hashes(out_dir)
    sums[path.name] = file_sha256(path)
    with atomic_path(out_dir / SHA256SUMS) as tmp:
        tmp.write_text("".join(f"{digest}  {file}\n" for file, digest in sorted(sums.items())))
        tmp.chmod(0o644)
    return path


def check(name: str, *, data_dir: str | None = None) -> float:
    """Load the shipped extractor (hash-checked) and measure its test accuracy."""
    extractor = load_extractor(name)
    images, labels = load_split(RECIPES[name].test_spec, "test", data_dir)
    return accuracy(extractor.net, images, labels)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ganforge.metrics.train_extractor", description=__doc__)
    parser.add_argument("name", choices=sorted(RECIPES))
    parser.add_argument("--check", action="store_true", help="only measure the shipped extractor's test accuracy")
    parser.add_argument("--data-dir", default=None, help="where the data sets are (as `ganforge train --data-dir`)")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder for the weights (default: the package)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the weights depend on it)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    torch.set_num_threads(args.threads)
    if args.check:
        acc = check(args.name, data_dir=args.data_dir)
        print(f"{args.name}: test accuracy {acc:.4f} ({RECIPES[args.name].test_spec} test split)")
        return 0
    net, metadata = train(args.name, data_dir=args.data_dir, seed=args.seed, epochs=args.epochs)
    path = write_weights(net, metadata, args.out)
    print(f"{args.name}: test accuracy {metadata['test_accuracy']}; wrote {path} (sha256 {file_sha256(path)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
