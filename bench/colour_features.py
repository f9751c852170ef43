"""Which layers of the colour extractor should FID read? The emoji ladder's rungs, as multiples of the floor's FID.

    OMP_NUM_THREADS=1 python bench/colour_features.py

For the shipped `emoji` extractor: the floor (the training-split emoji against the test split) and each rung
(the same emoji damaged) are scored by FID on several feature choices, each dimension standardized by its
mean and std over the training split: the spatial means of the ReLU outputs of conv blocks 2 and 3 (the
shipped features), with block 4, block 4 alone, and the 128-d embedding before the heads. A rung reads well when its
multiple of the floor is clearly above 1. Prints a Markdown table (docs/colour.md, "what was tried").
"""

from __future__ import annotations

import numpy as np
import torch

from ganforge.data import emoji, to_float
from ganforge.metrics.colour_ladder import rows_images
from ganforge.metrics.extractors import load_extractor
from ganforge.metrics.fid import frechet_distance

BLOCKS = {"block 2": (0, 32), "block 3": (32, 96), "block 4": (96, 224), "embedding": (224, 352)}
CHOICES = {
    "embedding (before the heads)": ("embedding",),
    "means of blocks 2-3 (shipped)": ("block 2", "block 3"),
    "means of blocks 2-4": ("block 2", "block 3", "block 4"),
    "means of block 4": ("block 4",),
    "means of blocks 2-4 + embedding": ("block 2", "block 3", "block 4", "embedding"),
}


@torch.no_grad()
def raw_features(net: torch.nn.Module, images: torch.Tensor) -> np.ndarray:
    """(N, 352): the unstandardized means of blocks 2, 3 and 4 (224) and the embedding (128)."""
    out = []
    for start in range(0, len(images), 500):
        x, taps = images[start : start + 500], []
        for k, layer in enumerate(net.body):
            x = layer(x)
            if k in (6, 10, 14):  # the ReLUs of blocks 2, 3 and 4
                taps.append(x.mean(dim=(2, 3)))
        out.append(torch.cat([*taps, net.embed(x)], 1))
    return torch.cat(out).double().numpy()


def main() -> None:
    torch.set_num_threads(1)
    net = load_extractor("emoji").net
    found = emoji.load_set(64)
    test = to_float(torch.from_numpy(found.images[found.mask("test")])).float()
    rows = [(name, raw_features(net, x)) for name, x in rows_images()]
    reference = raw_features(net, test)
    train = rows[0][1]
    mean, std = train.mean(0), train.std(0) + 1e-6
    names = [name for name, _ in rows if not name.startswith("floor, a random")]
    short = ["noise 0.05", "noise 0.1", "noise 0.2", "blur 1 px", "hue 30°", "one tone", "one group", "halves swapped"]
    assert len(short) == len(names) - 1
    print("| features | dims | floor FID | " + " | ".join(short) + " |")
    print("|" + " --- |" * (len(names) + 2))
    for label, blocks in CHOICES.items():
        cols = np.concatenate([np.arange(*BLOCKS[b]) for b in blocks])

        def fid(features: np.ndarray, cols: np.ndarray = cols) -> float:
            return frechet_distance(((features - mean) / std)[:, cols], ((reference - mean) / std)[:, cols])

        floor = fid(train)
        ratios = [fid(f) / floor for name, f in rows[1:] if name in names]
        print(f"| {label} | {len(cols)} | {floor:.2f} | " + " | ".join(f"{r:.2f}x" for r in ratios) + " |")


if __name__ == "__main__":
    main()
