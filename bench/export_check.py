"""Export figures: ONNX and TorchScript against torch for every arch and size (max abs difference, file sizes,
batch-64 time of onnxruntime, TorchScript and torch, side by side in one process).

    python bench/export_check.py [--threads 1] [--repeats 7]

Each generator is conditional (10 classes) with the width a preset of its arch uses (mlp 256, dcgan 64,
resnet 64; z_dim 100), random weights spread as after training (tests/test_export.py says how) and saved
as generator.safetensors; the figures are of the exported files, on one batch of 64 seeded latents.
Times are the fastest of --repeats runs after one warm-up, the three runtimes interleaved, each on --threads
threads (the fastest, not the median: on a shared machine other jobs only ever add time).
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

WIDTH = {"mlp": 256, "dcgan": 64, "resnet": 64}


def best_ms(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """name -> the fastest of `repeats` runs in ms, the runtimes interleaved (a busy machine slows all alike)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    for fn in fns.values():
        fn()  # warm-up
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - t) * 1e3)
    return {name: min(values) for name, values in times.items()}


def trained_like(arch: str, size: int):
    """A conditional G with seeded random weights, BatchNorm statistics of a few batches (as after training)."""
    from ganforge.config import ModelConfig
    from ganforge.models import build_generator

    cfg = ModelConfig(arch=arch, image_size=size, channels=1 if size == 28 else 3, width=WIDTH[arch], num_classes=10)
    torch.manual_seed(0)
    G = build_generator(cfg)
    with torch.no_grad():
        for p in G.parameters():
            p.add_(torch.randn_like(p) * 0.1)
        for m in G.modules():
            if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
                m.momentum = None
                m.reset_running_stats()
        G.train()
        for _ in range(4):
            G(torch.randn(64, cfg.z_dim), torch.arange(64) % 10)
    return G.eval()


def row(arch: str, size: int, folder: Path, options, repeats: int) -> str:
    """One table row: export G both ways, compare on 64 latents, time the three runtimes."""
    import onnxruntime as ort

    from ganforge.checkpoint import save_generator
    from ganforge.export import export_generator

    G = trained_like(arch, size)
    save_generator(folder / "generator.safetensors", G, G.cfg, {"bench": "export_check"})
    t = time.perf_counter()
    export_generator(folder, folder / "g.onnx", fmt="onnx")
    export_s = time.perf_counter() - t
    export_generator(folder, folder / "g.pt", fmt="torchscript")
    session = ort.InferenceSession(str(folder / "g.onnx"), options, providers=["CPUExecutionProvider"])
    scripted = torch.jit.load(str(folder / "g.pt"))
    z = torch.randn(64, G.cfg.z_dim, generator=torch.Generator().manual_seed(1))
    labels = torch.arange(64) % 10
    feeds = {"z": z.numpy(), "class": labels.numpy()}
    with torch.no_grad():
        expected = G(z, labels).numpy()
        diff_onnx = np.abs(session.run(None, feeds)[0] - expected).max()
        diff_ts = np.abs(scripted(z, labels).numpy() - expected).max()
        ms = best_ms(
            {"torch": lambda: G(z, labels), "ort": lambda: session.run(None, feeds), "ts": lambda: scripted(z, labels)},
            repeats,
        )
        torch_ms, ort_ms, ts_ms = ms["torch"], ms["ort"], ms["ts"]
    kb = [(folder / name).stat().st_size / 1024 for name in ("generator.safetensors", "g.onnx", "g.pt")]
    return (
        f"| {arch} | {size} | {kb[0]:.0f} | {kb[1]:.0f} | {kb[2]:.0f} | {diff_onnx:.1e} | {diff_ts:.1e} | "
        f"{torch_ms:.1f} | {ort_ms:.1f} | {ts_ms:.1f} | {ort_ms / torch_ms:.2f} | {export_s:.1f} |"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.* are deprecated in torch 2.13 (docs say so)
    torch.set_num_threads(args.threads)
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    work = Path(tempfile.mkdtemp(prefix="ganforge-export-"))
    print(f"torch {torch.__version__}, onnxruntime {ort.__version__}, {args.threads} thread(s), batch 64, "
          f"best of {args.repeats}")  # fmt: skip
    print()
    print("| arch | size | generator KB | ONNX KB | TorchScript KB | max abs diff ONNX | max abs diff TorchScript "
          "| torch ms | onnxruntime ms | TorchScript ms | onnxruntime / torch | ONNX export s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for arch in ("mlp", "dcgan", "resnet"):
        for size in (28, 32, 64):
            print(row(arch, size, work / f"{arch}-{size}", options, args.repeats), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
