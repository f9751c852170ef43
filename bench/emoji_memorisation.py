#!/usr/bin/env python3
"""The memorisation check of issue 26 on an emoji run: nearest training emoji of 1,000 samples vs the test split's.

    OMP_NUM_THREADS=1 python bench/emoji_memorisation.py runs/emoji-64

Features are the shipped `emoji` extractor's (the 96 standardized numbers FID reads). For each of --n samples
(seed --seed, a conditional G's groups drawn in its training data's mix, as `ganforge eval` draws them) the
distance to the nearest of the 3,288 training-split emoji; for each of the 367 test-split emoji (never trained on)
the same. The check passes when the samples' median is above the test emoji's. Prints the summary as JSON and
writes it to --json, and the closest 8 pairs (samples on the top row, their nearest training emoji below) to
--pairs; for a run directory both default to RUN/memorisation.json and RUN/memorisation.png, and RUN/report.html
is rewritten to show them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np


def main() -> None:
    from ganforge.checkpoint import load_generator
    from ganforge.data import load_dataset, to_float
    from ganforge.images import make_grid, provenance, save_png, to_uint8
    from ganforge.io import write_text_atomic
    from ganforge.metrics.extractors import load_extractor
    from ganforge.metrics.features import extract
    from ganforge.metrics.memorisation import memorisation
    from ganforge.report import MEMORISATION_FILE, MEMORISATION_PAIRS, REPORT_FILE, write_report
    from ganforge.sample import data_labels, sample

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run directory or generator file")
    parser.add_argument("--n", type=int, default=1_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=8, help="closest pairs to show")
    parser.add_argument("--json", type=Path, help="also write the summary here (default RUN/memorisation.json)")
    parser.add_argument("--pairs", type=Path, help="PNG of the closest k pairs (default RUN/memorisation.png)")
    args = parser.parse_args()
    is_run = args.run.is_dir()
    if is_run:
        args.json = args.json or args.run / MEMORISATION_FILE
        args.pairs = args.pairs or args.run / MEMORISATION_PAIRS

    G = load_generator(args.run)
    size, channels = G.cfg.image_size, G.cfg.channels
    fake = sample(G, args.n, seed=args.seed, labels=data_labels(G, args.n))
    train = load_dataset("emoji", split="train", image_size=size, channels=channels)
    test = load_dataset("emoji", split="test", image_size=size, channels=channels)
    net = load_extractor("emoji")
    features = {
        name: extract(x, net)[0] for name, x in (("fake", fake), ("train", train.images), ("test", test.images))
    }
    result = memorisation(features["fake"], features["train"], features["test"])
    summary = {
        "run": str(args.run),
        "generator_sha256": G.sha256,
        "seed": args.seed,
        "extractor": {"name": net.name, "sha256": net.sha256},
        "train": {"name": train.name, "split": train.split, "count": len(train)},
        "test": {"name": test.name, "split": test.split, "count": len(test)},
        **result.summary(args.k),
    }
    text = json.dumps(summary, indent=2)
    print(text)
    if args.json is not None:
        write_text_atomic(args.json, text + "\n")
    if args.pairs is not None:
        pairs = result.closest(args.k)
        top = to_uint8(fake[[i for i, _, _ in pairs]])
        bottom = to_uint8(to_float(train.images[[j for _, j, _ in pairs]]).float())
        grid = make_grid(np.concatenate([top, bottom]), nrow=len(pairs))
        note = "top row: generated samples; bottom row: the nearest training-split Noto emoji (extractor features)"
        text_chunks = provenance(generator_sha256=G.sha256, seed=args.seed, extra={"ganforge:pairs": note})
        save_png(grid, args.pairs, text_chunks)
        print(f"wrote {args.pairs}", file=sys.stderr)
    if is_run and (args.run / "config.json").is_file():
        print(f"wrote {write_report([args.run], args.run / REPORT_FILE)}", file=sys.stderr)


if __name__ == "__main__":
    main()
