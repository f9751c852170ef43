"""The watermark's robustness, false positives and cost, measured on samples of trained generators.

For each generator: n samples (seed --seed), marked with the generator's payload under a bench key,
then each condition (a re-save, noise, a shift, a brightness change, and the attacks the mark is NOT
claimed to survive) is applied and decoded blindly. Prints one table a generator: payload bit accuracy
(against the true payload), check-bit accuracy (what `decode` reports), found rate, and, for the
written PNG, PSNR and the FID ratio marked / unmarked (same seeds, the shipped mnist extractor).
Then false positives: the 10,000 MNIST and Fashion-MNIST test images, as they are and after JPEG 75.

    OMP_NUM_THREADS=1 python bench/watermark_robustness.py --generator /work/runs/mnist-hq/generator.safetensors \\
        --generator /work/runs/dcgan/generator.safetensors --n 1000
"""

from __future__ import annotations

import argparse
import hashlib
import io
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageEnhance

from ganforge import watermark as wm
from ganforge.checkpoint import load_generator
from ganforge.data.idx import read_images
from ganforge.images import make_grid, to_uint8
from ganforge.sample import sample

MNIST_TEST = "/work/shared/data/mnist/t10k-images-idx3-ubyte.gz"
FASHION_TEST = "/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz"
Attack = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _pil(a: np.ndarray) -> Image.Image:
    return Image.fromarray(a[..., 0] if a.shape[2] == 1 else a)


def _back(im: Image.Image, like: np.ndarray) -> np.ndarray:
    out = np.asarray(im.convert("L" if like.shape[2] == 1 else "RGB"))
    return out.reshape(*out.shape[:2], like.shape[2])


def jpeg(quality: int) -> Attack:
    def attack(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        buf = io.BytesIO()
        _pil(a).save(buf, format="JPEG", quality=quality)
        return _back(Image.open(buf), a)

    return attack


def noise(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.round(a + rng.normal(0, 2, a.shape)), 0, 255).astype(np.uint8)  # std 2/255 of the range


def shift(dy: int, dx: int) -> Attack:
    def attack(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        out = np.zeros_like(a)  # the image moves; the uncovered edge is black
        h, w = a.shape[:2]
        out[max(dy, 0) : h + min(dy, 0), max(dx, 0) : w + min(dx, 0)] = a[
            max(-dy, 0) : h + min(-dy, 0), max(-dx, 0) : w + min(-dx, 0)
        ]
        return out

    return attack


def brightness(factor: float) -> Attack:
    return lambda a, rng: _back(ImageEnhance.Brightness(_pil(a)).enhance(factor), a)


def crop(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    h, w = a.shape[:2]
    return a[2 : h - 2, 2 : w - 2].copy()  # 2 pixels off each side


def rescale(size_factor: float) -> Attack:
    def attack(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        h, w = a.shape[:2]
        return _back(_pil(a).resize((round(w * size_factor), round(h * size_factor)), Image.Resampling.BILINEAR), a)

    return attack


def screenshot(a: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Shown at 3x (nearest), captured from the screen with a 1-pixel misregistration, saved as JPEG 90."""
    h, w = a.shape[:2]
    big = _pil(a).resize((w * 3, h * 3), Image.Resampling.NEAREST)
    big = big.crop((1, 1, w * 3 + 1, h * 3 + 1))
    return jpeg(90)(_back(big, a), rng)


CONDITIONS: dict[str, Attack] = {
    "png (as written)": lambda a, rng: a,
    "jpeg 90": jpeg(90),
    "jpeg 75": jpeg(75),
    "jpeg 50": jpeg(50),
    "noise std 2/255": noise,
    "shift 1 px (right, down)": shift(1, 1),
    "shift 1 px (left)": shift(0, -1),
    "brightness +10%": brightness(1.1),
    "brightness -10%": brightness(0.9),
    "NOT: crop 2 px a side": crop,
    "NOT: rescale to 0.9x": rescale(0.9),
    "NOT: rescale to 2x": rescale(2.0),
    "NOT: screenshot (3x, jpeg 90)": screenshot,
    "NOT: jpeg 30": jpeg(30),
    "NOT: jpeg 10": jpeg(10),
}


def bits_of(hex_payload: str, n: int) -> np.ndarray:
    raw = bytes.fromhex(hex_payload + "0" * (len(hex_payload) % 2)) if hex_payload else b""
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8))[:n]
    return np.pad(bits, (0, n - len(bits)), constant_values=2)  # a missing bit is wrong


def fid(images: np.ndarray) -> float:
    from ganforge.metrics import evaluate

    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1
    return float(evaluate(images=x, data="mnist", data_dir=str(Path(MNIST_TEST).parent), metrics=["fid"])["fid"])


def bench_generator(path: str, key: bytes, n: int, seed: int, grids: int, near_ground_cost: float) -> None:
    G = load_generator(path)
    clean = to_uint8(sample(G, n, seed=seed))
    payload = wm.payload_bits(G.sha256, wm.capacity(*clean.shape[1:3]))
    start = time.perf_counter()
    marked = wm.mark_batch(clean, key, payload, near_ground_cost=near_ground_cost)
    embed_ms = (time.perf_counter() - start) / n * 1e3
    mse = ((marked.astype(np.float64) - clean) ** 2).mean(axis=(1, 2, 3))
    psnr = 10 * np.log10(255**2 / np.maximum(mse, 1e-12))
    fid_clean, fid_marked = fid(clean), fid(marked)
    print(f"\n{path}  (sha256 {G.sha256[:12]}, {n} samples, seed {seed}, payload {wm.payload_hex(payload)}, "
          f"near-ground cost {near_ground_cost:g})")  # fmt: skip
    print(f"PSNR mean {psnr.mean():.2f} dB, min {psnr.min():.2f} dB; embed {embed_ms:.1f} ms an image")
    print(f"FID (mnist features) unmarked {fid_clean:.3f}  marked {fid_marked:.3f}  ratio {fid_marked / fid_clean:.4f}")
    print(f"{'condition':34s} {'payload bit acc':>15s} {'check bit acc':>13s} {'found':>7s} {'found@1e-5':>10s} "
          f"{'found@1e-4':>10s}")  # fmt: skip
    rng = np.random.default_rng(seed)
    for name, attack in CONDITIONS.items():
        start = time.perf_counter()
        readings = [wm.decode(attack(image, rng), key) for image in marked]
        accuracy = np.mean([(bits_of(r.payload, len(payload)) == payload).mean() for r in readings])
        checks = np.mean([r.bit_accuracy for r in readings])
        found = np.mean([r.found for r in readings])
        middle = np.mean([r.p_value <= 1e-5 for r in readings])
        loose = np.mean([r.p_value <= 1e-4 for r in readings])
        print(f"{name:34s} {accuracy:15.4f} {checks:13.4f} {found:7.3f} {middle:10.3f} {loose:10.3f}")
    wrong = [wm.decode(image, hashlib.sha256(b"wrong key %d" % i).digest()) for i, image in enumerate(marked)]
    loose = np.mean([r.p_value <= 1e-4 for r in wrong])
    middle = np.mean([r.p_value <= 1e-5 for r in wrong])
    found = np.mean([r.found for r in wrong])
    print(f"{'wrong key (one a sample)':34s} {'':15s} {'':13s} {found:7.3f} {middle:10.3f} {loose:10.3f}")
    # 5x5 grids as ganforge writes them: each tile marked, then tiled with 2-pixel padding.
    tiles = torch.from_numpy(marked[: grids * 25]).permute(0, 3, 1, 2).float() / 127.5 - 1
    grid_images = [make_grid(tiles[k * 25 : (k + 1) * 25], nrow=5) for k in range(grids)]
    for name in ("png (as written)", "jpeg 75", "jpeg 50"):
        readings = [wm.decode(CONDITIONS[name](g, rng), key) for g in grid_images]
        accuracy = np.mean([(bits_of(r.payload, len(payload)) == payload).mean() for r in readings])
        found = np.mean([r.found for r in readings])
        checks = np.mean([r.bit_accuracy for r in readings])
        middle = np.mean([r.p_value <= 1e-5 for r in readings])
        loose = np.mean([r.p_value <= 1e-4 for r in readings])
        print(f"{'5x5 grid, ' + name:34s} {accuracy:15.4f} {checks:13.4f} {found:7.3f} {middle:10.3f} {loose:10.3f}")


def figure(path: str, key: bytes, out: str) -> None:
    """Unmarked 5x5 grid | marked | the difference x8 around grey, side by side."""
    G = load_generator(path)
    clean = to_uint8(sample(G, 25, seed=7))
    marked = wm.mark_batch(clean, key, wm.payload_bits(G.sha256, wm.capacity(*clean.shape[1:3])))
    difference = np.clip(128 + 8 * (marked.astype(np.int16) - clean), 0, 255).astype(np.uint8)
    panels = [make_grid(p, nrow=5) for p in (clean, marked, difference)]
    gap = np.full((panels[0].shape[0], 8, panels[0].shape[2]), 255, np.uint8)
    strip = np.concatenate([panels[0], gap, panels[1], gap, panels[2]], axis=1)
    Image.fromarray(strip[..., 0] if strip.shape[2] == 1 else strip).resize(
        (strip.shape[1] * 2, strip.shape[0] * 2), Image.Resampling.NEAREST
    ).save(out)
    print(f"wrote {out}")


def fid_calibration(path: str, n: int, seed: int) -> None:
    """What FID makes of other changes of about the mark's size: Gaussian pixel noise (clipped), same samples."""
    G = load_generator(path)
    clean = to_uint8(sample(G, n, seed=seed))
    base = fid(clean)
    rng = np.random.default_rng(seed)
    print(f"\nFID calibration on {path} ({n} samples, seed {seed}): unmarked {base:.3f}")
    for std in (1.0, 2.0, 3.0):
        noisy = np.clip(np.round(clean + rng.normal(0, std, clean.shape)), 0, 255).astype(np.uint8)
        psnr = 10 * np.log10(255**2 / ((noisy.astype(np.float64) - clean) ** 2).mean(axis=(1, 2, 3))).mean()
        print(f"N(0, {std:g}) grey levels, clipped: PSNR {psnr:.2f} dB, FID ratio {fid(noisy) / base:.4f}")


def fid_parts(path: str, key: bytes, n: int, seed: int) -> None:
    """Where the mark's FID cost comes from: the mark's change kept only on some pixels, and noise for scale."""
    G = load_generator(path)
    clean = to_uint8(sample(G, n, seed=seed))
    change = wm.mark_batch(clean, key, wm.payload_bits(G.sha256, wm.capacity(*clean.shape[1:3]))).astype(float) - clean
    base = fid(clean)
    ground = clean.max(axis=3, keepdims=True) == 0
    near = np.stack([wm.pixel_cost(image.astype(float), 2.0) > 1 for image in clean])[..., None]  # within 2 px
    noise = np.random.default_rng(seed).normal(0, 4, clean.shape)
    print(f"\nFID parts on {path} ({n} samples, seed {seed}): unmarked {base:.3f}")
    for name, changed in (
        ("the whole mark", change),
        ("the mark on the strokes only", change * ~ground),
        ("the mark on the black ground only", change * ground),
        ("... on the ground within 2 px of a stroke", change * near),
        ("... on the ground further out", change * (ground & ~near)),
        ("N(0, 4) grey levels on the strokes only", noise * ~ground),
    ):
        image = np.clip(np.round(clean + changed), 0, 255).astype(np.uint8)
        psnr = 10 * np.log10(255**2 / np.maximum(((image.astype(float) - clean) ** 2).mean(axis=(1, 2, 3)), 1e-12))
        print(f"  {name:45s} PSNR {psnr.mean():6.2f} dB  FID ratio {fid(image) / base:.4f}")


def null_check(key: bytes, draws: int = 10_000_000) -> None:
    """The null model behind the p-value: the exact tail against simulated sums, and real digits' statistic."""
    from ganforge.watermark_code import cos_tail

    n, n_check, weight = wm.capacity(28, 28), wm.CHECK_BITS, wm.CHECK_WEIGHT
    rng = np.random.default_rng(1)
    points = np.array([21.0, 28.0, 35.0])
    hits = np.zeros(len(points))
    for _ in range(draws // 250_000):
        sums = np.cos(rng.uniform(0, 2 * np.pi, (250_000, n))).sum(axis=1)
        sums += weight * np.cos(rng.uniform(0, 2 * np.pi, (250_000, n_check))).sum(axis=1)
        hits += (sums[:, None] >= points).sum(axis=0)
    variance = (n + weight**2 * n_check) / 2
    print(f"\nnull tail of {n} cos(U) + {weight} x {n_check} cos(U): simulated ({draws:,} draws) vs ganforge's bound")
    for t, h in zip(points, hits, strict=True):
        bound = float(cos_tail(np.array(t), n, n_check, weight))
        print(f"  P(sum >= {t:g}): simulated {h / draws:.2e}, bound {bound:.2e}")
    code = wm._code(key, 28, 28)
    phase = 2 * np.pi * (code.project(read_images(MNIST_TEST).astype(np.float64)) - code.dither) / code.delta
    checks = np.cos(phase[:, code.is_check] - np.pi * code.check).sum(axis=1)
    statistic = weight * checks + np.cos(2 * phase[:, ~code.is_check]).sum(axis=1)
    print(f"  MNIST test digits (as they are, no alignment search): statistic mean {statistic.mean():.3f}, "
          f"variance {statistic.var():.2f} (null: 0, {variance:g})")  # fmt: skip


def bench_real(key: bytes) -> None:
    print(f"\nfalse positives on real images (must be found on none; the threshold's rate is {wm.ALPHA:g}):")
    for name, path in (("MNIST test", MNIST_TEST), ("Fashion-MNIST test", FASHION_TEST)):
        images = read_images(path)[..., None]
        for condition in ("png (as written)", "jpeg 75"):
            attack = CONDITIONS[condition]
            rng = np.random.default_rng(0)
            readings = [wm.decode(attack(image, rng), key) for image in images]
            found = sum(r.found for r in readings)
            middle = sum(r.p_value <= 1e-5 for r in readings)
            loose = sum(r.p_value <= 1e-4 for r in readings)
            smallest = min(r.p_value for r in readings)
            print(f"{name:20s} {condition:18s} found {found} of {len(images):,} (at p <= 1e-5: {middle}, "
                  f"at 1e-4: {loose}; smallest p-value {smallest:.2e})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--generator", action="append", default=[], help="generator file (repeat for several)")
    parser.add_argument("--n", type=int, default=1000, help="samples a generator (0: no table)")
    parser.add_argument("--seed", type=int, default=2026, help="sampling seed (tuning used seeds 5, 77, 99 and 123)")
    parser.add_argument("--grids", type=int, default=40, help="5x5 grids made of the marked samples")
    parser.add_argument("--skip-real", action="store_true", help="skip the 20,000 real test images")
    parser.add_argument("--near-ground-cost", type=float, default=1.0, help="perceptual masking (1: off)")
    parser.add_argument("--figure", metavar="PNG", help="write unmarked | marked | difference x8 (first generator)")
    parser.add_argument("--null-check", action="store_true", help="check the p-value's null model (about a minute)")
    parser.add_argument("--fid-parts", action="store_true", help="where the mark's FID cost is (first generator)")
    parser.add_argument("--fid-calibration", action="store_true", help="FID ratios of pixel noise (first generator)")
    args = parser.parse_args()
    key = hashlib.sha256(b"ganforge watermark bench key").digest()
    if args.null_check:
        null_check(key)
    if args.fid_calibration and args.generator:
        fid_calibration(args.generator[0], max(args.n, 1000), args.seed)
    if args.fid_parts and args.generator:
        fid_parts(args.generator[0], key, max(args.n, 1000), args.seed)
    if args.figure and args.generator:
        figure(args.generator[0], key, args.figure)
    for path in args.generator if args.n > 0 else []:
        bench_generator(path, key, args.n, args.seed, args.grids, args.near_ground_cost)
    if not args.skip_real:
        bench_real(key)


if __name__ == "__main__":
    main()
