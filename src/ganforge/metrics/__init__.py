"""Offline evaluation: the metric registry and `evaluate`, which returns the eval.json dict.

Every number is computed on features of an extractor that ganforge ships (see `extractors.py`), or of
the FID Inception network with the user's weights file (`inception.py`), against a fixed reference set
(see `reference.py`); the result records that protocol and names the extractor in every score's label.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ganforge.checkpoint import load_generator
from ganforge.data import to_float, toy_modes
from ganforge.data.folder import load_folder, native_shape
from ganforge.errors import ConfigError
from ganforge.metrics import coverage, kid, knn, modes, precision_recall, stacked, toy
from ganforge.metrics.cache import ReferenceStats, cached_reference_stats, compute_stats
from ganforge.metrics.classifier_score import classifier_score
from ganforge.metrics.extractors import KNOWN as EXTRACTORS
from ganforge.metrics.extractors import Extractor, load_extractor, resolve_extractor_name
from ganforge.metrics.features import extract, extract_features
from ganforge.metrics.fid import frechet_distance, frechet_from_stats
from ganforge.metrics.inception_score import SHUFFLE_SEED, inception_score
from ganforge.metrics.reference import REFERENCE_COUNT, load_reference
from ganforge.metrics.report import format_table, score_labels
from ganforge.models import Generator
from ganforge.sample import GENERATE_CHUNK, data_labels, generate, latents
from ganforge.version import __version__

log = logging.getLogger(__name__)

DEFAULT_SAMPLES = 10_000
STACKED_DATA = "stacked-mnist"  # scored per channel (metrics/stacked.py)

__all__ = ["EXTRACTORS", "METRICS", "evaluate", "extract_features", "format_table", "frechet_distance"]


@dataclass
class Context:
    """What the metric functions read: generated features (and class probabilities) and the reference stats."""

    fake: np.ndarray  # (N, D) features (toy data: the 2-D points)
    probs: np.ndarray | None  # (N, K) class probabilities; None for toy data
    ref: ReferenceStats
    seed: int
    kid_subsets: int
    kid_subset_size: int
    toy_modes: tuple[Tensor, float] | None = None  # (centers (K, 2), std) for toy data
    knn: dict[str, float] | None = None  # filled by the one k-NN pass that four metrics share
    channel_probs: np.ndarray | None = None  # (N, 3, 10) digit probabilities of each channel; stacked data only
    labels: np.ndarray | None = None  # (N,) the class each sample was drawn for; a conditional generator only
    is_splits: int = 10  # Inception Score splits
    extractor: str = ""  # its name: "inception" follows torch-fidelity's protocol for KID and IS
    mode_confidence: float = modes.CONFIDENCE  # the extractor's: top probability at which a class counts as read


def _fid(ctx: Context) -> dict[str, Any]:
    mu, sigma = np.mean(ctx.fake.astype(np.float64), 0), np.cov(ctx.fake.astype(np.float64), rowvar=False)
    return {"fid": frechet_from_stats(mu, sigma, ctx.ref.mu, ctx.ref.sigma)}


FEW_SAMPLES = 1_000  # below this, evaluate warns and reports FID's bootstrap spread
BOOTSTRAP_RESAMPLES = 20


def _fid_spread(ctx: Context) -> float:
    """The std of FID over bootstrap resamples (with replacement) of the samples' features: the estimate's spread."""
    rng = np.random.default_rng(ctx.seed)
    feats = ctx.fake.astype(np.float64)
    values = []
    for _ in range(BOOTSTRAP_RESAMPLES):
        pick = feats[rng.integers(0, len(feats), len(feats))]
        values.append(frechet_from_stats(pick.mean(0), np.cov(pick, rowvar=False), ctx.ref.mu, ctx.ref.sigma))
    return round(float(np.std(values)), 4)


def _kid(ctx: Context) -> dict[str, Any]:
    # On Inception features, the subsets are torch-fidelity's (its sampler and seed), so its figures are ours.
    is_inception = ctx.extractor == "inception"
    mean, std = kid.kernel_distance(
        ctx.fake,
        ctx.ref.features,
        num_subsets=ctx.kid_subsets,
        subset_size=ctx.kid_subset_size,
        seed=SHUFFLE_SEED if is_inception else ctx.seed,
        sampler="numpy" if is_inception else "torch",
    )
    return {"kid": mean, "kid_std": std}


def _knn(ctx: Context) -> dict[str, float]:
    """Precision, recall, density and coverage from one pass over the (fake, real) distances."""
    if ctx.knn is None:
        real, fake = knn.as_tensor(ctx.ref.features), knn.as_tensor(ctx.fake)
        knn.check_count(fake.size(0), precision_recall.K, "generated", "precision/recall")
        pr = precision_recall.PrecisionRecall(ctx.ref.radii_pr, knn.knn_radii(fake, precision_recall.K))
        dc = coverage.DensityCoverage(ctx.ref.radii_dc)
        knn.scan(fake, real, [pr, dc])
        (p, r), (d, c) = pr.result(), dc.result()
        ctx.knn = {"precision": p, "recall": r, "density": d, "coverage": c}
    return ctx.knn


def _precision_recall(ctx: Context) -> dict[str, Any]:
    return {key: _knn(ctx)[key] for key in ("precision", "recall")}


def _density_coverage(ctx: Context) -> dict[str, Any]:
    return {key: _knn(ctx)[key] for key in ("density", "coverage")}


def _classifier_score(ctx: Context) -> dict[str, Any]:
    if ctx.probs is None or ctx.extractor == "inception":  # on Inception, the Inception Score below is the one
        return {"classifier_score": None}
    return {"classifier_score": classifier_score(ctx.probs)}


def _inception_score(ctx: Context) -> dict[str, Any]:
    if ctx.probs is None or ctx.extractor != "inception":
        return {}
    mean, std = inception_score(ctx.probs, splits=ctx.is_splits)
    return {"inception_score": mean, "inception_score_std": std}


def _modes(ctx: Context) -> dict[str, Any]:
    if ctx.extractor == "inception":  # ImageNet's 1,008 classes say nothing of a data set's modes
        return {}
    if ctx.toy_modes is not None:
        centers, std = ctx.toy_modes
        hist = toy.mode_histogram(ctx.fake, centers, std)
        return {**toy.toy_metrics(ctx.fake, centers, std), "mode_kl": modes.mode_kl(hist, ctx.ref.class_hist)}
    assert ctx.probs is not None
    k = ctx.probs.shape[1]
    hist = modes.read_histogram(ctx.probs)
    out = {
        "modes_covered": modes.covered_at(ctx.probs, ctx.mode_confidence),
        "num_modes": k,
        "mode_kl": modes.mode_kl(hist, ctx.ref.class_hist),
    }
    if ctx.labels is not None and int(ctx.labels.max()) < k:
        # A conditional G is asked for each class in turn, so its class mix is uniform by construction: what
        # shows whether it draws the digit asked for is how often the extractor reads that class.
        out["class_match"] = float((ctx.probs.argmax(axis=1) == ctx.labels).mean())
    return out


def _stacked(ctx: Context) -> dict[str, Any]:
    return {} if ctx.channel_probs is None else stacked.stacked_scores(ctx.channel_probs)


# The registry: name -> function of the context returning eval.json entries.
METRICS: dict[str, Callable[[Context], dict[str, Any]]] = {
    "fid": _fid,
    "kid": _kid,
    "precision_recall": _precision_recall,
    "density_coverage": _density_coverage,
    "classifier_score": _classifier_score,
    "inception_score": _inception_score,  # extractor "inception" only
    "modes": _modes,
    "stacked": _stacked,  # stacked-mnist only: its modes of 1,000 digit triples
}


def _inception_protocol(is_splits: int) -> dict[str, Any]:
    return {
        "kid_sampler": f"numpy RandomState({SHUFFLE_SEED}).choice, as torch-fidelity",
        "is_splits": is_splits,
        "is_shuffle_seed": SHUFFLE_SEED,
        "quantisation": "uint8: round((x + 1) * 127.5), grey repeated to RGB",
    }


def default_samples(data: str) -> int:
    """Samples `evaluate` draws when not told: 26,000 for stacked-mnist (the published protocol), else 10,000."""
    return stacked.SAMPLES if data == STACKED_DATA else DEFAULT_SAMPLES


def _extract(
    images: Tensor,
    net: Extractor,
    is_stacked: bool,
    batch_size: int,
    device: str | torch.device,
    on_batch: Callable[[int, int], None] | None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(features (N, D), class probabilities (N, K), per-channel digit probabilities (N, 3, 10) or None).

    Stacked data: each channel is read as its own digit; the features are the three channels' concatenated
    (N, 3 x 128), so FID and the k-NN metrics work unchanged, and the classes are the 1,000 digit triples.
    """
    if not is_stacked:
        features, probs = extract(images, net, batch_size=batch_size, device=device, on_batch=on_batch)
        return features, probs, None
    x = stacked.split_channels(images)
    features, probs = extract(x, net, batch_size=batch_size, device=device, on_batch=on_batch)
    features, channel_probs = stacked.join_channels(features, probs)
    return features, stacked.joint_probs(channel_probs), channel_probs


def _input_shape(generator: Generator | None, images: Tensor | str | Path | None) -> tuple[int, ...] | None:
    """(C, H, W) of what is scored, where known before loading it: the generator's, a tensor's or a folder's."""
    if isinstance(generator, Generator):
        return tuple(generator.cfg.shape)
    if isinstance(images, (str, Path)):
        from ganforge.data.folder import native_shape
        from ganforge.errors import DataError

        try:
            c, side = native_shape(images)
        except DataError:  # said again, in full, where the folder is loaded
            return None
        return (c, side, side)
    if images is not None and torch.as_tensor(images).ndim == 4:
        return tuple(torch.as_tensor(images).shape[1:])
    return None


def _minimum_samples(names: Sequence[str], kid_subset_size: int) -> int:
    # KID's subsets shrink to the sample count (see evaluate), so a few hundred images still score, with a warning.
    need = {"fid": 2, "kid": min(kid_subset_size, 2), "precision_recall": precision_recall.K + 1}
    need["density_coverage"] = coverage.K + 1
    return max([need.get(name, 1) for name in names], default=1)


def _sample_in_batches(
    G: Generator, n: int, seed: int, batch_size: int, on_batch: Callable[[int, int], None] | None
) -> Tensor:
    """What `sample(G, n, seed=seed, labels=data_labels(G, n))` returns, bit for bit (G runs in fixed chunks), drawn
    batch by batch: a conditional G draws its classes in its training data's mix where its file records it."""
    z, labels = latents(n, G.cfg.z_dim, seed=seed), data_labels(G, n)
    block = -(-batch_size // GENERATE_CHUNK) * GENERATE_CHUNK  # whole chunks: the same chunks as one call
    out = []
    for start in range(0, n, block):
        y = None if labels is None else labels[start : start + block]
        out.append(generate(G, z[start : start + block], y))
        if on_batch is not None:
            on_batch(min(start + block, n), n)
    return torch.cat(out)


def _generated_images(
    G: Generator | None,
    images: Tensor | str | Path | None,
    n: int,
    seed: int,
    image_size: int | None,
    channels: int | None,
    batch_size: int = 500,
    on_batch: Callable[[int, int], None] | None = None,
) -> tuple[Tensor, dict[str, Any]]:
    """(images in [-1, 1], what they came from) from a generator (sampled in eval mode) or given images."""
    if images is not None:
        if isinstance(images, (str, Path)):
            # An extractor of any input size (Inception) reads a folder at its images' own size, as torch-fidelity.
            size = image_size or native_shape(images)[1]
            reason = "the extractor reads grey images: the scores are of grey copies"
            found = load_folder(images, image_size=size, channels=channels, grey_reason=reason)  # in memory: no cache
            x, source = to_float(found.images).float(), {"images": str(images)}
        else:
            x, source = to_float(torch.as_tensor(images)), {"images": "tensor"}
        if len(x) > n:  # a seeded random subset: image folders and data sets are often sorted by class
            log.info("scoring a random %d of the %d images (seed %d)", n, len(x), seed)
            x = x[torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))[:n].sort().values]
        return x, source
    assert G is not None
    was_training = G.training
    G.eval()
    try:
        x = _sample_in_batches(G, n, seed, batch_size, on_batch)
    finally:
        G.train(was_training)
    info = {"sha256": getattr(G, "sha256", None), "provenance": getattr(G, "provenance", None)}
    return x, {"generator": info}


def evaluate(
    generator: Generator | str | Path | None = None,
    *,
    images: Tensor | str | Path | None = None,
    data: str | None = None,
    data_dir: str | Path | None = None,
    n: int | None = None,
    extractor: str | None = None,
    seed: int = 0,
    batch_size: int = 500,
    metrics: Sequence[str] | None = None,
    kid_subsets: int = kid.NUM_SUBSETS,
    kid_subset_size: int = kid.SUBSET_SIZE,
    reference_count: int = REFERENCE_COUNT,
    reference_split: str = "test",
    inception_weights: str | Path | None = None,
    is_splits: int = 10,
    device: str | torch.device = "cpu",
    on_progress: Callable[[str, int, int], None] | None = None,
) -> dict[str, Any]:
    """Score a generator (a module, run dir or generator file) or images (a tensor in [-1, 1] or a folder).

    data: the data spec whose reference set to score against; default: the generator's training data
    (its provenance), else mnist. n: default 10,000 (stacked-mnist: 26,000). extractor: default by data;
    "inception" (implied by inception_weights) scores FID, KID, IS and the k-NN metrics on the FID Inception
    network with that weights file (else $GANFORGE_INCEPTION_WEIGHTS), as torch-fidelity does; is_splits: the
    Inception Score's splits. reference_split: "test" (the protocol: images never trained on) or "train" (the
    training split, where the data has one). Returns the eval.json dict
    (see DESIGN.md); metrics that were not asked for are None. on_progress(stage, done, total): called as
    the long stages go (sampling, features, the first reference build), for the caller's progress bar.

    Example:
        >>> result = ganforge.evaluate("runs/dcgan", n=10_000)
        >>> print(format_table(result))
    """
    t0 = time.perf_counter()
    if (generator is None) == (images is None):
        raise ConfigError("pass either a generator (run dir, generator file or module) or images, not both or neither")
    names = list(METRICS) if metrics is None else list(metrics)
    unknown = sorted(set(names) - set(METRICS))
    if unknown:
        raise ConfigError(f"unknown metrics {unknown}; use some of {', '.join(METRICS)}")
    if n is not None and n < 1:
        raise ConfigError(f"number of samples must be positive; got {n}")
    if batch_size < 1:
        raise ConfigError(f"batch size must be at least 1; got {batch_size}")

    def stage(name: str) -> Callable[[int, int], None] | None:
        if on_progress is None:
            return None
        return lambda done, total: on_progress(name, done, total)

    if isinstance(generator, (str, Path)):
        generator = load_generator(generator)
    if data is None:
        provenance = getattr(generator, "provenance", None) or {}
        data = str(provenance.get("data") or "mnist")
    is_stacked = data == STACKED_DATA
    if is_stacked and isinstance(generator, Generator) and generator.cfg.channels != 3:
        raise ConfigError(
            f"the generator makes {generator.cfg.channels}-channel images, but stacked-mnist is scored on 3-channel "
            "images (one digit a channel); score it against --data mnist, or train on --data stacked-mnist"
        )
    n = default_samples(data) if n is None else n
    minimum = _minimum_samples(names, kid_subset_size)
    if images is None and n < minimum:
        raise ConfigError(f"these metrics need at least {minimum} samples (k-NN k+1); got n={n}")
    is_toy = data.startswith("toy:")
    if inception_weights is not None and extractor is None:
        extractor = "inception"
    if inception_weights is not None and extractor != "inception":
        raise ConfigError(f"inception_weights is for extractor 'inception'; got extractor={extractor!r}: drop one")

    # 1. The extractor (toy data is scored on its 2-D coordinates).
    if is_toy:
        if extractor is not None:
            raise ConfigError(f"toy data ({data}) is scored on its 2-D points; drop extractor={extractor!r}")
        net = None
        extractor_info: dict[str, Any] = {"name": "coordinates", "sha256": None, "label": "2-D points", "resize": None}
    else:
        shape = None if extractor is not None else _input_shape(generator, images)
        extractor_name = resolve_extractor_name(extractor, data, shape)
        if is_stacked and extractor_name != "mnist":
            raise ConfigError(
                f"stacked-mnist is scored per channel by the mnist extractor; drop extractor={extractor!r}"
            )
        net = load_extractor(extractor_name, device=device, inception_weights=inception_weights)
        extractor_info = {"name": net.name, "sha256": net.sha256, "label": net.label, "resize": net.resize}
        if "weights" in net.metadata:
            extractor_info["weights"] = net.metadata["weights"]
        if is_stacked:
            extractor_info["per_channel"] = True
    # Folders of images are loaded at the extractor's size (0: any size, as Inception resizes itself).
    image_size = None if net is None or not net.input_shape[1] else net.input_shape[1]
    channels = 3 if is_stacked else None if net is None else net.input_shape[0]

    # 2. The generated images and the reference set.
    fake_images, source = _generated_images(
        generator, images, n, seed, image_size, channels, batch_size, stage("sampling")
    )
    n_fake = int(fake_images.shape[0])
    if is_stacked:
        what = "the generator's images" if images is None else f"the images in {images}"
        stacked.check_images(fake_images, what="the images" if isinstance(images, Tensor) else what)
    if net is not None and net.input_shape[0] == 3 and net.input_shape[1] and not is_stacked:
        # A colour extractor resizes whatever it gets: the reference comes at the samples' own size and channels,
        # so both sets go through the same resize (a perfect 32 px generator matches the 32 px reference).
        image_size, channels = int(fake_images.shape[-1]), int(fake_images.shape[1])
    if image_size is None and net is not None and data.startswith("folder:"):  # any-size extractor: the samples' size
        image_size = int(fake_images.shape[-1])
    ref = load_reference(
        data, data_dir=data_dir, count=reference_count, image_size=image_size, channels=channels, split=reference_split
    )
    if n_fake < minimum:
        raise ConfigError(f"these metrics need at least {minimum} samples (k-NN k+1); got {n_fake}")
    if ref.count < minimum:
        raise ConfigError(f"these metrics need at least {minimum} reference images; {data!r} has {ref.count}")
    kid_subset_size = min(kid_subset_size, n_fake, ref.count)  # recorded in the protocol

    # 3. Features of both; the reference's are cached with their Gaussian, k-NN radii and class mix.
    if net is None:
        centers, std = toy_modes(data)
        fake, probs = fake_images.reshape(n_fake, -1).numpy().astype(np.float32), None
        channel_probs: np.ndarray | None = None
        if fake.shape[1] != 2:
            raise ConfigError(f"toy data is 2-D points; got samples of shape {tuple(fake_images.shape[1:])}")

        def compute() -> ReferenceStats:
            points = ref.images.reshape(ref.count, -1).numpy()
            return compute_stats(points, toy.mode_histogram(points, centers, std))

        toy_info: tuple[Tensor, float] | None = (centers, std)
    else:
        extractor_net = net
        fake, probs, channel_probs = _extract(fake_images, net, is_stacked, batch_size, device, stage("features"))

        def compute() -> ReferenceStats:
            log.info("building the %s reference features (%d images) once; later runs read them from the cache",
                     ref.name, ref.count)  # fmt: skip
            feats, ref_probs, _ = _extract(
                ref.images, extractor_net, is_stacked, batch_size, device, stage("reference features")
            )
            if is_stacked:
                # Uniform by construction (each channel's digit is drawn uniformly); the 10,000 reference images'
                # own histogram over 1,000 bins would add about 0.05 nats of its sampling noise to mode KL.
                hist = np.full(stacked.NUM_MODES, 1 / stacked.NUM_MODES)
            else:
                hist = modes.read_histogram(ref_probs)
            return compute_stats(feats, hist)

        toy_info = None
    stats = cached_reference_stats(
        name=ref.name,
        split=ref.split,
        count=ref.count,
        content_hash=ref.content_hash,
        extractor_sha256=str(extractor_info["sha256"] or "coordinates") + (":per-channel" if is_stacked else ""),
        compute=compute,
    )

    # 4. The metrics.
    drawn_for = None if generator is None or is_stacked else data_labels(generator, n_fake)
    ctx = Context(fake, probs, stats, seed, kid_subsets, kid_subset_size, toy_info, channel_probs=channel_probs,
                  labels=None if drawn_for is None else drawn_for.numpy(), is_splits=is_splits,
                  extractor=str(extractor_info["name"]),
                  mode_confidence=modes.CONFIDENCE if net is None else net.mode_confidence)  # fmt: skip
    result: dict[str, Any] = dict.fromkeys(
        ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "classifier_score"]
    )
    result.update(dict.fromkeys(["inception_score", "inception_score_std"]))
    result.update({"modes_covered": None, "num_modes": None, "mode_kl": None})
    if is_stacked:
        result.update(dict.fromkeys(["stacked_modes", "stacked_kl", "stacked_confident"]))
    timings = {}
    for name in names:
        t = time.perf_counter()
        result.update(METRICS[name](ctx))
        timings[name] = round(time.perf_counter() - t, 3)
    if n_fake < FEW_SAMPLES and result.get("fid") is not None:
        result["fid_bootstrap_std"] = _fid_spread(ctx)
        log.warning(
            "only %d samples: estimates this small vary from draw to draw (FID %.2f, std %.2f over %d bootstrap "
            "resamples of the samples) and FID is biased upward (it falls as the count grows); compare only figures "
            "made at the same count, and use %d or more samples where you can",
            n_fake, result["fid"], result["fid_bootstrap_std"], BOOTSTRAP_RESAMPLES, FEW_SAMPLES,
        )  # fmt: skip
    result.update(
        {
            "n_samples": n_fake,
            "reference": ref.describe(),
            "extractor": extractor_info,
            "data": data,
            "seed": seed,
            "labels": score_labels(result, str(extractor_info["label"])),
            "protocol": {
                "samples": n_fake,
                "reference": ref.describe(),
                "extractor": extractor_info["name"],
                "extractor_sha256": extractor_info["sha256"],
                "resize": extractor_info["resize"],
                "kid_subsets": kid_subsets,
                "kid_subset_size": kid_subset_size,
                "k_precision_recall": precision_recall.K,
                "k_density_coverage": coverage.K,
                "mode_confidence": ctx.mode_confidence,
                **(_inception_protocol(is_splits) if extractor_info["name"] == "inception" else {}),
                **({"stacked_confidence": stacked.CONFIDENCE} if is_stacked else {}),
            },
            **source,
            "ganforge_version": __version__,
            "time_s": round(time.perf_counter() - t0, 3),
            "metric_time_s": timings,
        }
    )
    return result
