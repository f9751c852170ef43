"""The quick quality check of a training run: G's samples of fixed noise against the training data's figures."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from ganforge.config import ModelConfig
from ganforge.data import Dataset, to_float, toy_modes
from ganforge.metrics import modes, toy
from ganforge.metrics.cache import cached_arrays
from ganforge.metrics.extractors import COLOUR_INPUT, Extractor, load_extractor
from ganforge.metrics.features import extract
from ganforge.metrics.fid import feature_stats, frechet_from_stats
from ganforge.models import Generator
from ganforge.sample import generate, labels_in_mix, latents

PROBE_SAMPLES = 1_000
FID_SAMPLES = 2_000
FID_REFERENCE = 10_000  # training images behind the end-of-run FID's Gaussian
REFERENCE_SEED = 0  # picks the training images behind both references, whatever the run's seed
PIXEL_SIDE = 32  # pixel diversity is measured on images pooled down to at most this side
EXTRACTOR_SHAPE = (1, 28, 28)
BATCH = 128  # extractor batch: on one CPU thread 64-128 ran ~2x faster than 1,000 at once (cache-sized)


def extractor_for(data: str, shape: tuple[int, ...]) -> str | None:
    """The shipped extractor that reads this data, or None (then diversity is measured on pixels)."""
    if data.partition(":")[0] == "emoji" and tuple(shape) == COLOUR_INPUT:  # other sizes: no per-check resize
        return "emoji"
    if tuple(shape) != EXTRACTOR_SHAPE:
        return None
    if data.startswith("fashion-mnist"):
        return "fashion-mnist"
    if data in ("mnist", "mnist-sample") or data.startswith("idx:"):
        return "mnist"
    return None  # a folder of 28x28 grey images need not hold digits


def mean_pairwise_distance(x: Tensor) -> float:
    """Mean Euclidean distance over all pairs of distinct rows of (N, D) x."""
    x = x.reshape(len(x), -1).double()
    n = len(x)
    if n < 2:
        return 0.0
    return float(torch.cdist(x, x).sum() / (n * (n - 1)))


def _pixels(images: Tensor) -> Tensor:
    """(N, C, H, W) in [-1, 1] -> pooled to at most PIXEL_SIDE a side, so big images stay cheap."""
    side = max(images.shape[-2:])
    if side > PIXEL_SIDE:
        images = F.adaptive_avg_pool2d(images, PIXEL_SIDE)
    return images


@dataclass
class QualityProbe:
    """A fixed batch of noise and the training data's reference figures; `check(G)` compares G against them."""

    kind: str  # "classes" (a shipped extractor reads the data), "toy" or "pixels"
    z: Tensor  # (PROBE_SAMPLES, z_dim) fixed latents
    labels: Tensor | None  # a conditional G's classes, in the training data's mix
    real_diversity: float  # mean pairwise distance of real data (features, or pooled pixels)
    dataset: Dataset
    extractor: Extractor | None = None
    real_hist: np.ndarray | None = None  # (K,) class (or toy mode) histogram of the training data
    toy_centers: Tensor | None = None
    toy_std: float = 0.0
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the extractor runs
    _fid_ref: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    _last_features: np.ndarray | None = field(default=None, repr=False)  # of the last check's samples

    @classmethod
    def build(
        cls,
        model: ModelConfig,
        dataset: Dataset,
        *,
        seed: int = 0,
        device: str | torch.device = "cpu",
        n: int = PROBE_SAMPLES,
    ) -> QualityProbe:
        """The probe for one run: latents from `seed`, reference figures from n training images.

        G runs where its weights are; the extractor runs on `device`.
        """
        device = torch.device(device)
        z = latents(n, model.z_dim, seed=seed)
        labels = None
        if model.is_conditional:  # in the training data's class mix, which the reference histogram below has
            labels = labels_in_mix(dataset.class_counts(model.num_classes) or [1] * model.num_classes, n)
        # The real images behind the reference figures do not depend on the run's seed, so the cache of those
        # figures serves every run on this data (a new seed's first start used to pay the extractor for them).
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(REFERENCE_SEED))[:n]
        real = to_float(dataset.images[pick]).float()
        if dataset.spec.startswith("toy:"):
            centers, std = toy_modes(dataset.spec)
            points = real.reshape(len(real), -1)
            hist = toy.mode_histogram(points, centers, std)
            return cls("toy", z, labels, mean_pairwise_distance(points), dataset, None, hist, centers, std, seed)
        name = extractor_for(dataset.spec, tuple(dataset.images.shape[1:]))
        if name is None:
            return cls("pixels", z, labels, mean_pairwise_distance(_pixels(real)), dataset, seed=seed)
        net = load_extractor(name, device=device)

        def reference() -> dict[str, np.ndarray]:
            features, probs = extract(real, net, batch_size=BATCH, device=device)
            hist = modes.read_histogram(probs)
            return {"hist": hist, "diversity": np.array([mean_pairwise_distance(torch.from_numpy(features))])}

        # The same data, extractor, seed and count give the same figures: a run's second start reads them.
        fields = {"data": dataset.content_hash(), "extractor": net.sha256, "seed": REFERENCE_SEED, "n": len(real)}
        ref = cached_arrays("probe-classes", fields, reference)
        diversity = float(ref["diversity"][0])
        return cls("classes", z, labels, diversity, dataset, net, ref["hist"], seed=seed, device=device)

    def _samples(self, G: Generator, z: Tensor, labels: Tensor | None) -> Tensor:
        was_training = G.training
        G.eval()
        try:
            return generate(G, z, labels)
        finally:
            G.train(was_training)

    def check(self, G: Generator) -> dict[str, float]:
        """Quality figures of G on the fixed noise (see the class docstring); each a float for metrics.jsonl."""
        fake = self._samples(G, self.z, self.labels)
        if not torch.isfinite(fake).all():
            return {"diversity_ratio": math.nan}
        if self.kind == "toy":
            assert self.toy_centers is not None and self.real_hist is not None
            points = fake.reshape(len(fake), -1)
            found = toy.toy_metrics(points, self.toy_centers, self.toy_std)
            out = {
                "modes_covered": float(found["modes_covered"]),
                "num_modes": float(found["num_modes"]),
                "high_quality": round(float(found["high_quality"]), 4),
            }
            # The spread over modes of the samples that sit at one; with none there, it is undefined (not 0).
            hist = toy.near_mode_histogram(points, self.toy_centers, self.toy_std)
            if hist is not None:
                out["mode_kl"] = round(modes.mode_kl(hist, self.real_hist), 4)
            return out
        if self.kind == "pixels":
            return {"diversity_ratio": round(mean_pairwise_distance(_pixels(fake)) / self.real_diversity, 4)}
        assert self.extractor is not None and self.real_hist is not None
        features, probs = extract(fake, self.extractor, batch_size=BATCH, device=self.device)
        self._last_features = features
        k = self.extractor.num_classes
        hist = modes.read_histogram(probs)
        return {
            "classes_covered": float(modes.covered_at(probs, self.extractor.mode_confidence)),
            "num_classes": float(k),
            "mode_kl": round(modes.mode_kl(hist, self.real_hist), 4),
            "diversity_ratio": round(mean_pairwise_distance(torch.from_numpy(features)) / self.real_diversity, 4),
        }

    def final_check(self, G: Generator) -> dict[str, float]:
        """check(G) and, where an extractor exists, "fid_2k": the check's 1,000 samples are half of the FID's 2,000
        (draws of the same noise distribution), so only the other half goes through the extractor."""
        self._last_features = None
        out = self.check(G)
        if (fid := self.fid_2k(G, reuse=self._last_features)) is not None:
            out["fid_2k"] = round(fid, 4)
        return out

    def fid_2k(self, G: Generator, *, reuse: np.ndarray | None = None) -> float | None:
        """FID of 2,000 samples against (up to) 10,000 training images on the extractor; None without one.

        reuse: extractor features of samples of this same G to count among the 2,000 (only the rest are drawn).
        """
        if self.extractor is None:
            return None
        if self._fid_ref is None:
            extractor = self.extractor

            def reference() -> dict[str, np.ndarray]:
                pick = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(REFERENCE_SEED))
                real = to_float(self.dataset.images[pick[:FID_REFERENCE]]).float()
                mu, sigma = feature_stats(extract(real, extractor, batch_size=BATCH, device=self.device)[0])
                return {"mu": mu, "sigma": sigma}

            n_ref = min(FID_REFERENCE, len(self.dataset))
            fields = {"data": self.dataset.content_hash(), "extractor": extractor.sha256, "seed": REFERENCE_SEED}
            ref = cached_arrays("probe-fid", {**fields, "n": n_ref}, reference)  # 10,000 images, once per data
            self._fid_ref = (ref["mu"], ref["sigma"])
        reused = np.zeros((0, self.extractor.feature_dim), np.float32) if reuse is None else reuse[:FID_SAMPLES]
        n = FID_SAMPLES - len(reused)
        z = latents(n, self.z.size(1), seed=self.seed + 1)  # not the probe's noise: a fresh draw
        labels = None if self.labels is None else labels_in_mix(torch.bincount(self.labels).numpy(), n)  # same mix
        fake = self._samples(G, z, labels)
        if not torch.isfinite(fake).all():
            return math.nan
        features = extract(fake, self.extractor, batch_size=BATCH, device=self.device)[0]
        mu, sigma = feature_stats(np.concatenate([reused.astype(np.float32), features]))
        return round(frechet_from_stats(mu, sigma, *self._fid_ref), 3)
