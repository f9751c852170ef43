"""Projection quality and speed: project real test images into a generator's latent space and score the result.

For each input: does the shipped extractor read the reconstruction as the input's class (MNIST: the true label;
out-of-domain data: the class it reads the input as), the cosine of their extractor features, and the pixel MSE.

    OMP_NUM_THREADS=1 python bench/projection.py /work/runs/mnist-hq --data idx:/work/shared/data/mnist --n 200
    OMP_NUM_THREADS=1 python bench/projection.py /work/runs/mnist-hq --data fashion-mnist --n 200
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import time

import torch

from ganforge.checkpoint import load_generator
from ganforge.data import load_dataset, to_float
from ganforge.metrics.extractors import SHIPPED, load_extractor
from ganforge.project import DEFAULT_STARTS, DEFAULT_STEPS, extractor_for, project


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("generator", help="run directory, generator file or pretrained:NAME")
    parser.add_argument("--data", default="idx:/work/shared/data/mnist", help="data spec of the inputs")
    parser.add_argument("--split", default="test")
    parser.add_argument("--n", type=int, default=200, help="the first n images of the split (a fixed, seeded pick)")
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--starts", type=int, default=DEFAULT_STARTS)
    parser.add_argument("--batch", type=int, default=50, help="images projected together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args()

    G = load_generator(args.generator)
    ds = load_dataset(args.data, split=args.split, image_size=G.cfg.image_size, channels=G.cfg.channels)
    pick = torch.randperm(len(ds), generator=torch.Generator().manual_seed(args.seed))[: args.n]
    targets = to_float(ds.images[pick])
    labels = None if ds.labels is None else ds.labels[pick]
    extractor = extractor_for(G)

    t0 = time.perf_counter()
    parts = [
        project(G, targets[i : i + args.batch], steps=args.steps, starts=args.starts, seed=args.seed)
        for i in range(0, len(targets), args.batch)
    ]
    seconds = time.perf_counter() - t0

    recon = torch.cat([p.images for p in parts])
    pixel = torch.cat([p.pixel_mse for p in parts])
    result = {
        "generator": args.generator, "generator_sha256": G.sha256, "data": args.data, "split": args.split,
        "n": len(targets), "steps": args.steps, "starts": args.starts, "batch": args.batch, "seed": args.seed,
        "seconds": round(seconds, 2), "seconds_per_image": round(seconds / len(targets), 3),
        "pixel_mse_median": round(float(pixel.median()), 4),
        "psnr_median_db": round(float(10 * torch.log10(4 / pixel.median())), 2),
        "torch_threads": torch.get_num_threads(), "cpu": _cpu(), "python": platform.python_version(),
    }  # fmt: skip
    if extractor is not None:
        cosine = torch.cat([p.feature_cosine for p in parts if p.feature_cosine is not None])
        with torch.no_grad():
            read_recon = extractor.net(recon)[1].argmax(1)
            read_input = extractor.net(targets)[1].argmax(1)
        # In-domain data with labels the extractor knows: the true class; otherwise the class it reads the input as.
        same_labels = labels is not None and ds.name in ("mnist", "idx", "mnist-sample") and extractor.name == "mnist"
        truth = labels if same_labels else read_input
        result |= {
            "extractor": extractor.name,
            "class_agreement_with": "true label" if same_labels else "extractor's reading of the input",
            "class_agreement": round(float((read_recon == truth).float().mean()), 4),
            "feature_cosine_median": round(float(cosine.median()), 4),
            "feature_cosine_p10": round(float(cosine.quantile(0.1)), 4),
            "feature_cosine_mean": round(float(cosine.mean()), 4),
        }
        if same_labels:
            result["extractor_accuracy_on_inputs"] = round(float((read_input == labels).float().mean()), 4)
        result |= _held_out(extractor.name, targets, recon, labels, ds.name)
    text = json.dumps(result, indent=2)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


def _held_out(used: str, targets: torch.Tensor, recon: torch.Tensor, labels, data: str) -> dict:
    """The same scores from the other shipped extractor, which the projection never saw: an unbiased judge."""
    other = next(name for name in SHIPPED if name != used)
    net = load_extractor(other).net
    with torch.no_grad():
        (f_in, l_in), (f_out, l_out) = net(targets), net(recon)
    cosine = torch.nn.functional.cosine_similarity(f_in, f_out, dim=1)
    knows_labels = labels is not None and (other == "fashion-mnist") == (data == "fashion-mnist")
    truth = labels if knows_labels else l_in.argmax(1)
    return {
        "held_out_extractor": other,
        "held_out_feature_cosine_median": round(float(cosine.median()), 4),
        "held_out_class_agreement": round(float((l_out.argmax(1) == truth).float().mean()), 4),
        "held_out_class_agreement_with": "true label" if knows_labels else "its reading of the input",
        **({"held_out_accuracy_on_inputs": round(float((l_in.argmax(1) == labels).float().mean()), 4)}
           if knows_labels else {}),
    }  # fmt: skip


def _cpu() -> str:
    out = subprocess.run(["lscpu"], capture_output=True, text=True, check=False).stdout
    return next((line.split(":", 1)[1].strip() for line in out.splitlines() if line.startswith("Model name")), "?")


if __name__ == "__main__":
    main()
