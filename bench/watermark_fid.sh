#!/bin/sh
# FID of marked vs unmarked samples (same seeds), both through `ganforge sample` and `ganforge eval`.
# usage: bench/watermark_fid.sh GENERATOR OUT_DIR [N] [SEED]    (MNIST test split in $MNIST_DIR)
# The key is the bench key of bench/watermark_robustness.py (sha256 of a fixed string), written to OUT_DIR.
set -eu
generator=$1
out=$2
n=${3:-10000}
seed=${4:-2026}
data_dir=${MNIST_DIR:-/work/shared/data/mnist}
mkdir -p "$out"
python -c "import hashlib, sys; from ganforge import watermark as wm
wm.write_key(sys.argv[1], hashlib.sha256(b'ganforge watermark bench key').digest())" "$out/bench.key" 2>/dev/null || true
rm -rf "$out/plain" "$out/marked"
ganforge sample "$generator" --n "$n" --seed "$seed" --out "$out/plain/" --no-watermark > /dev/null
ganforge sample "$generator" --n "$n" --seed "$seed" --out "$out/marked/" --key-file "$out/bench.key" > /dev/null
for kind in plain marked; do
    ganforge eval --images "$out/$kind" --data mnist --data-dir "$data_dir" --json "$out/$kind.json" > "$out/$kind.txt"
done
python - "$out" <<'PY'
import json, sys
import numpy as np
from pathlib import Path
from PIL import Image
out = Path(sys.argv[1])
plain, marked = (json.loads((out / f"{k}.json").read_text()) for k in ("plain", "marked"))
psnr = []
for f in sorted((out / "plain").glob("*.png")):
    a = np.asarray(Image.open(f), dtype=np.float64)
    b = np.asarray(Image.open(out / "marked" / f.name), dtype=np.float64)
    psnr.append(10 * np.log10(255**2 / max(((a - b) ** 2).mean(), 1e-12)))
print(f"{out}: {plain['n_samples']} samples; FID unmarked {plain['fid']:.4f} marked {marked['fid']:.4f} "
      f"ratio {marked['fid'] / plain['fid']:.4f}; PSNR mean {np.mean(psnr):.2f} dB, min {np.min(psnr):.2f} dB")
PY
