"""Parity table: ganforge's Inception FID/KID/IS vs torch-fidelity's (and pytorch-fid's way), same file and images.

    python bench/inception_parity.py [--n 50] [--weights FILE]

Without --weights the network gets seeded random weights (the real ones cannot be downloaded here),
saved in torch-fidelity's file format, and in pytorch-fid's (old serialisation, no BatchNorm step
counters) for the pytorch-fid column. Two image pairs: 28x28 grey (real MNIST digits, mnist-sample,
against other digits with N(0, 0.2) pixel noise) and 64x64 colour (synthetic boxes on gradients, two
seeds and backgrounds). ganforge runs `evaluate` (reference read from a PNG folder); torch-fidelity runs
`calculate_metrics` on the same uint8 pixels. pytorch-fid cannot be imported here (it builds its network
from torchvision), so its column is its pipeline emulated: its resize (torch's bilinear interpolate on
[0, 1] floats, no TF compatibility) in front of ganforge's network loading the pytorch-fid-layout file,
and its FID formula (scipy's sqrtm of the covariance product). torch-fidelity is imported beside a stub
torchvision (tests/inception_helpers.py says why).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from inception_helpers import import_torch_fidelity, random_inception_state, synthetic_images  # noqa: E402

KID_SUBSETS = 100


def pairs(n: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """name -> (generated, reference) uint8 (n, C, S, S)."""
    from ganforge.data import load_dataset

    digits = load_dataset("mnist-sample").images
    noisy = digits[n : 2 * n].float() + torch.randn(n, 1, 28, 28, generator=torch.Generator().manual_seed(0)) * 25.5
    return {
        "28x28 grey": (noisy.round().clamp(0, 255).to(torch.uint8), digits[:n]),
        "64x64 colour": (synthetic_images("colour64", n, 1, 0.3), synthetic_images("colour64", n, 2, 0.0)),
    }


def pytorch_fid_way(net, fake: torch.Tensor, real: torch.Tensor) -> float:
    """pytorch-fid's pipeline: [0, 1] floats, torch bilinear resize to 299, 2x - 1; FID by scipy's sqrtm."""
    from scipy import linalg

    def features(images: torch.Tensor) -> np.ndarray:
        x = images.expand(-1, 3, -1, -1).float() / 255
        x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
        with torch.no_grad():
            return net.run(2 * x - 1)[0].numpy()

    a, b = features(fake), features(real)
    mu1, mu2, s1, s2 = a.mean(0), b.mean(0), np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    covmean = linalg.sqrtm(s1.dot(s2))
    diff = mu1 - mu2
    return float(diff.dot(diff) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean.real))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=50, help="images a set (default 50)")
    parser.add_argument("--weights", default=None, help="a real weights file (default: seeded random weights)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    work = Path(tempfile.mkdtemp(prefix="ganforge-inception-"))
    os.environ["GANFORGE_HOME"] = str(work / "home")
    tf = import_torch_fidelity()

    from ganforge.metrics import evaluate
    from ganforge.metrics.inception import load_inception

    weights = Path(args.weights) if args.weights else work / "weights-inception-2015-12-05-6726825d.pth"
    if not args.weights:
        torch.save(random_inception_state(0), weights)
    state = torch.load(weights, weights_only=True)
    legacy = work / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(OrderedDict((k, v) for k, v in state.items() if "num_batches" not in k), legacy,
               _use_new_zipfile_serialization=False)  # fmt: skip
    pytorch_fid_net = load_inception(legacy)
    kid_size = min(args.n // 2, 1000)  # subsets smaller than the sets, so that they differ
    splits = 10 if args.n >= 50 else 2
    print(f"weights: {'file ' + str(weights) if args.weights else 'seeded random (seed 0)'}; {args.n} images a set; "
          f"KID {KID_SUBSETS} subsets of {kid_size}; IS {splits} splits; torch {torch.__version__}, "
          f"torch-fidelity {tf.__version__}, {torch.get_num_threads()} threads")  # fmt: skip
    print()
    print("| images | metric | ganforge | torch-fidelity | relative difference | pytorch-fid's way |")
    print("|---|---|---|---|---|---|")
    for name, (fake, real) in pairs(args.n).items():
        folder = work / name.replace(" ", "-")
        folder.mkdir()
        for i, pixels in enumerate(real):
            array = pixels.permute(1, 2, 0).numpy()
            Image.fromarray(array[:, :, 0] if array.shape[2] == 1 else array).save(folder / f"{i:04d}.png")
        t0 = time.perf_counter()
        ours = evaluate(images=fake.float() / 127.5 - 1, data=f"folder:{folder}", inception_weights=weights,
                        metrics=["fid", "kid", "inception_score"], kid_subsets=KID_SUBSETS, kid_subset_size=kid_size,
                        is_splits=splits)  # fmt: skip
        t1 = time.perf_counter()
        theirs = tf.calculate_metrics(
            input1=_Images(fake),
            input2=_Images(real), cuda=False, fid=True, kid=True, isc=True, feature_extractor_weights_path=str(weights),
            kid_subsets=KID_SUBSETS, kid_subset_size=kid_size, isc_splits=splits, cache=False, save_cpu_ram=True,
            verbose=False,
        )  # fmt: skip
        t2 = time.perf_counter()
        fid_pf = pytorch_fid_way(pytorch_fid_net, fake, real)
        rows = (
            ("FID", ours["fid"], theirs["frechet_inception_distance"], f"{fid_pf:.4f}"),
            ("KID", ours["kid"], theirs["kernel_inception_distance_mean"], "-"),
            ("KID std", ours["kid_std"], theirs["kernel_inception_distance_std"], "-"),
            ("IS", ours["inception_score"], theirs["inception_score_mean"], "-"),
            ("IS std", ours["inception_score_std"], theirs["inception_score_std"], "-"),
        )
        for metric, a, b, pf in rows:
            print(f"| {name} | {metric} | {a:.6g} | {b:.6g} | {abs(a - b) / max(abs(b), 1e-12):.1e} | {pf} |")
        print(f"| {name} | seconds | {t1 - t0:.1f} | {t2 - t1:.1f} | | |", flush=True)
    return 0


class _Images(torch.utils.data.Dataset):
    """uint8 (3, H, W) items, grey repeated to RGB: torch-fidelity's input."""

    def __init__(self, images: torch.Tensor) -> None:
        self.images = images.expand(-1, 3, -1, -1)

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.images[i]


if __name__ == "__main__":
    sys.exit(main())
