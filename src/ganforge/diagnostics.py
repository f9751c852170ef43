"""Run diagnostics: a cheap quality probe on fixed noise, and a monitor that turns logged stats into warnings."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

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
from ganforge.sample import generate, latents

PROBE_SAMPLES = 1_000
FID_SAMPLES = 2_000
FID_REFERENCE = 10_000  # training images behind the end-of-run FID's Gaussian
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
    labels: Tensor | None  # classes cycled for a conditional G
    real_diversity: float  # mean pairwise distance of real data (features, or pooled pixels)
    dataset: Dataset
    extractor: Extractor | None = None
    real_hist: np.ndarray | None = None  # (K,) class (or toy mode) histogram of the training data
    toy_centers: Tensor | None = None
    toy_std: float = 0.0
    seed: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))  # where the extractor runs
    _fid_ref: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)

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
        labels = torch.arange(n) % model.num_classes if model.is_conditional else None
        pick = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:n]
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
            hist = modes.class_histogram(modes.predicted_classes(probs), net.num_classes)
            return {"hist": hist, "diversity": np.array([mean_pairwise_distance(torch.from_numpy(features))])}

        # The same data, extractor, seed and count give the same figures: a run's second start reads them.
        fields = {"data": dataset.content_hash(), "extractor": net.sha256, "seed": seed, "n": len(real)}
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
        k = self.extractor.num_classes
        confident = modes.predicted_classes(probs, confidence=modes.CONFIDENCE)
        hist = modes.class_histogram(modes.predicted_classes(probs), k)
        return {
            "classes_covered": float(modes.modes_covered(confident, k)),
            "num_classes": float(k),
            "mode_kl": round(modes.mode_kl(hist, self.real_hist), 4),
            "diversity_ratio": round(mean_pairwise_distance(torch.from_numpy(features)) / self.real_diversity, 4),
        }

    def fid_2k(self, G: Generator) -> float | None:
        """FID of 2,000 samples against (up to) 10,000 training images on the extractor; None without one."""
        if self.extractor is None:
            return None
        if self._fid_ref is None:
            extractor = self.extractor

            def reference() -> dict[str, np.ndarray]:
                pick = torch.randperm(len(self.dataset), generator=torch.Generator().manual_seed(self.seed))
                real = to_float(self.dataset.images[pick[:FID_REFERENCE]]).float()
                mu, sigma = feature_stats(extract(real, extractor, batch_size=BATCH, device=self.device)[0])
                return {"mu": mu, "sigma": sigma}

            n_ref = min(FID_REFERENCE, len(self.dataset))
            fields = {"data": self.dataset.content_hash(), "extractor": extractor.sha256, "seed": self.seed, "n": n_ref}
            ref = cached_arrays("probe-fid", fields, reference)  # 10,000 images: most of the checks' cost, once
            self._fid_ref = (ref["mu"], ref["sigma"])
        n = FID_SAMPLES
        z = latents(n, self.z.size(1), seed=self.seed + 1)  # not the probe's noise: a fresh draw
        labels = None if self.labels is None else torch.arange(n) % int(self.labels.max() + 1)
        fake = self._samples(G, z, labels)
        if not torch.isfinite(fake).all():
            return math.nan
        mu, sigma = feature_stats(extract(fake, self.extractor, batch_size=BATCH, device=self.device)[0])
        return round(frechet_from_stats(mu, sigma, *self._fid_ref), 3)


@dataclass(frozen=True)
class Thresholds:
    """When the monitor warns. Measured on 4,000-step runs (mnist-sample, OMP_NUM_THREADS=1, checked every 400
    steps): `seed` preset seeds 0 and 1 (collapses), `dcgan` seed 0 (does not), and 5,000 steps of `toy-ring`."""

    # Collapse, on the probe's figures (see `collapse_reasons`).
    # Young generators of every preset read as one class (mode KL 2.15-2.27, diversity 0.08-0.45 at step 400-800);
    # dcgan was judged fine from step 1,600 on, toy-ring from 1,000: hence the warm-up.
    warmup_steps: int = 2_000
    collapse_checks: int = 2  # consecutive checks that must agree
    classes_lost: int = 2  # dcgan held 8 of 10 classes from step 1,600 on; seed never covered more than 3
    # Mode KL from step 2,000 on: seed 1.02-2.24 (1.61 and 1.02 at step 4,000); dcgan 0.15-0.18; toy-ring 0.005-0.008.
    mode_kl: float = 0.5
    # Diversity ratio from step 2,000 on: seed 0.55-0.76, dcgan 0.82 (0.80 at 1,600). It overlaps, so KL decides
    # where there is an extractor; 0.5 flags near-total collapse for data without one.
    diversity_ratio: float = 0.5
    # D or G winning, on D(G(z)) held for `stretch_steps` steps and `stretch_logs` log steps. Longest stretch of
    # D(G(z)) < 0.05: seed 200 and 300 steps (it dips there on 23-25% of log steps), dcgan 0, toy-ring 0 (min 0.29).
    # D(G(z)) > 0.95: never in any of them (max 0.58).
    d_fake_low: float = 0.05
    d_fake_high: float = 0.95
    stretch_steps: int = 1_000
    stretch_logs: int = 5
    # Losses exactly unchanged (to the logged 6 decimals) over this many log steps: never in a moving run.
    stalled_logs: int = 5


# Presets for MNIST-like digits, each better than the one before it (docs/benchmarks.md): a collapsed run is pointed
# only at the ones above its own, never at a worse one.
PRESET_LADDER = ("seed", "seed-stable", "dcgan", "mnist-hq")

ADVICE = {
    "mode_collapse": "try --augment ada, or --preset seed-stable / --preset dcgan",
    "d_wins": "D rejects every fake and G learns little: try --loss nonsaturating or hinge, a lower --lr-d, "
    "--instance-noise 0.1 or --augment ada",
    "g_wins": "D no longer tells fakes from real: try a higher --lr-d or --n-critic 2",
    "loss_stalled": "training has stopped moving (a saturated D or G): lower --lr-g / --lr-d or try --loss hinge",
    "nonfinite": "lower --lr-g / --lr-d or try --loss hinge",
}
TOY_COLLAPSE_ADVICE = "try --minibatch-std or --loss hinge"  # image augmentation does not apply to 2-D points
NOT_LEARNED_ADVICE = "train longer, or check that the data is what the model expects"


def collapse_advice(preset: str | None, augment: str = "none") -> str:
    """What to try against mode collapse: ADA unless it is on, and only the presets that are better than this one."""
    tries = [] if augment == "ada" else ["--augment ada"]
    if preset in PRESET_LADDER:
        better = PRESET_LADDER[PRESET_LADDER.index(preset) + 1 :]
        if better:
            tries.append(" / ".join(f"--preset {p}" for p in better))
    tries = tries or ["a longer run, --r1 10 or --minibatch-std"]
    return "try " + ", or ".join(tries)


def collapse_reasons(check: dict[str, float], best_covered: float, t: Thresholds) -> list[str]:
    """What in a probe check looks collapsed (empty when nothing does)."""
    reasons = []
    covered = check.get("classes_covered", check.get("modes_covered"))
    total = check.get("num_classes", check.get("num_modes"))
    unit = "classes" if "classes_covered" in check else "modes"
    if covered is not None and best_covered - covered >= t.classes_lost:
        reasons.append(f"{covered:.0f} of {total:.0f} {unit} covered, down from {best_covered:.0f}")
    kl = check.get("mode_kl")
    if kl is not None and kl > t.mode_kl:
        reasons.append(f"mode KL {kl:.2f} (> {t.mode_kl})")
    ratio = check.get("diversity_ratio")
    if ratio is not None and ratio < t.diversity_ratio:
        reasons.append(f"diversity {ratio:.2f} of the data's (< {t.diversity_ratio})")
    return reasons


class Monitor:
    """Turns each logged step's stats into warnings, each once per episode (re-armed when the condition clears).

    A plain object: `state_dict()` / `load_state_dict()` carry its memory across a resumed run.
    """

    def __init__(self, thresholds: Thresholds | None = None, *, collapse_advice: str | None = None) -> None:
        self.thresholds = thresholds or Thresholds()
        self.collapse_advice = collapse_advice  # what the mode_collapse warning suggests (default ADVICE's)
        self.active: set[str] = set()  # warnings raised whose condition still holds
        self.since: dict[str, int] = {}  # condition -> step it started
        self.count: dict[str, int] = {}  # condition -> log steps it has held
        self.best_covered = 0.0
        self.last_losses: tuple[float, float] | None = None
        self.losses_since = 0  # step the last losses were first seen
        self.raised: list[tuple[int, str]] = []  # (step, code) of every warning so far

    def state_dict(self) -> dict[str, Any]:
        return {
            "active": sorted(self.active),
            "since": dict(self.since),
            "count": dict(self.count),
            "best_covered": self.best_covered,
            "last_losses": None if self.last_losses is None else list(self.last_losses),
            "losses_since": self.losses_since,
            "raised": [list(r) for r in self.raised],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.active = set(state["active"])
        self.since = {k: int(v) for k, v in state["since"].items()}
        self.count = {k: int(v) for k, v in state["count"].items()}
        self.best_covered = float(state["best_covered"])
        last = state["last_losses"]
        self.last_losses = None if last is None else (float(last[0]), float(last[1]))
        self.losses_since = int(state["losses_since"])
        self.raised = [(int(s), str(c)) for s, c in state["raised"]]

    def _held(self, code: str, holds: bool, step: int, min_steps: int, min_logs: int) -> bool:
        """Track a condition's stretch; True when it has held long enough."""
        if not holds:
            self.since.pop(code, None)
            self.count.pop(code, None)
            return False
        self.since.setdefault(code, step)
        self.count[code] = self.count.get(code, 0) + 1
        return step - self.since[code] >= min_steps and self.count[code] >= min_logs

    def _episode(
        self, code: str, firing: bool, step: int, message: str, out: list[str], advice: str | None = None
    ) -> None:
        if not firing:
            self.active.discard(code)
        elif code not in self.active:
            self.active.add(code)
            self.raised.append((step, code))
            out.append(f"{code}: {message}; {advice or ADVICE[code]}")

    def observe(self, step: int, logged: dict[str, float]) -> list[str]:
        """The warnings that start at this logged step (one line each, starting with the code)."""
        t = self.thresholds
        out: list[str] = []
        loss_d, loss_g = logged.get("loss_d"), logged.get("loss_g")

        # 1. Non-finite losses.
        if loss_d is not None and loss_g is not None:
            bad = not (math.isfinite(loss_d) and math.isfinite(loss_g))
            self._episode("nonfinite", bad, step, f"loss_d {loss_d}, loss_g {loss_g} at step {step}", out)

            # 2. Losses that do not move at all (a saturated network gives the same numbers every step).
            same = self.last_losses == (loss_d, loss_g) and not bad
            if not same:
                self.losses_since = step
            self.last_losses = (loss_d, loss_g)
            stalled = self._held("loss_stalled", same, step, 0, t.stalled_logs - 1)
            seen = f"loss_d {loss_d} and loss_g {loss_g} unchanged since step {self.losses_since}"
            self._episode("loss_stalled", stalled, step, seen, out)

        # 3. One side winning for a long stretch.
        d_real, d_fake = logged.get("d_real"), logged.get("d_fake")
        if d_fake is not None:
            low = self._held("d_wins", d_fake < t.d_fake_low, step, t.stretch_steps, t.stretch_logs)
            since = self.since.get("d_wins", step)
            self._episode(
                "d_wins", low, step, f"D(G(z)) below {t.d_fake_low} since step {since} (now {d_fake:.3f})", out
            )
            high = self._held("g_wins", d_fake > t.d_fake_high, step, t.stretch_steps, t.stretch_logs)
            since = self.since.get("g_wins", step)
            seen = f"D(G(z)) {d_fake:.3f}" + ("" if d_real is None else f", D(x) {d_real:.3f}")
            self._episode("g_wins", high, step, f"D calls fakes real since step {since} ({seen})", out)

        # 4. Collapse, on the steps that carry a probe check.
        covered = logged.get("classes_covered", logged.get("modes_covered"))
        if covered is not None or "diversity_ratio" in logged:
            reasons = collapse_reasons(logged, self.best_covered, t)
            if covered is not None:
                self.best_covered = max(self.best_covered, covered)
            # A young G always looks collapsed; judge after the warm-up, on consecutive checks.
            held = self._held("mode_collapse", bool(reasons), step, 0, t.collapse_checks) and step >= t.warmup_steps
            if covered is not None and not any("covered" in r for r in reasons):
                unit = "classes" if "classes_covered" in logged else "modes"
                total = logged.get("num_classes", logged.get("num_modes", 0))
                reasons.insert(0, f"{covered:.0f} of {total:.0f} {unit} covered")
            advice = TOY_COLLAPSE_ADVICE if "modes_covered" in logged else self.collapse_advice
            self._episode("mode_collapse", held, step, ", ".join(reasons), out, advice)
        return out


def summary_line(
    check: dict[str, float],
    warnings: list[str],
    *,
    thresholds: Thresholds | None = None,
    step: int | None = None,
    advice: str | None = None,
) -> str:
    """The end-of-run verdict in one line: what the final check saw, and what to try if it looks wrong.

    Example: "covered 2 of 10 classes (mode KL 1.52, diversity 0.61, FID(2k) 35.1): collapsed; try --augment ada, ..."
    step: the run's last step; before the warm-up a young G always looks collapsed, so the verdict says it is early.
    advice: what to try against collapse (collapse_advice for the run's preset); default ADVICE's.
    """
    t = thresholds or Thresholds()
    figures = []
    if "classes_covered" in check:
        head = f"covered {check['classes_covered']:.0f} of {check.get('num_classes', 10):.0f} classes"
    elif "modes_covered" in check:
        head = f"covered {check['modes_covered']:.0f} of {check.get('num_modes', 0):.0f} modes"
        if "high_quality" in check:
            figures.append(f"{check['high_quality']:.0%} near a mode")
    else:
        head = "final check"
    if "mode_kl" in check:
        figures.append(f"mode KL {check['mode_kl']:.2f}")
    elif "modes_covered" in check:
        figures.append("mode KL undefined: no sample near a mode")
    if "diversity_ratio" in check:
        figures.append(f"diversity {check['diversity_ratio']:.2f} of the data's")
    if check.get("fid_2k") is not None:
        figures.append(f"FID(2k) {check['fid_2k']:.1f}")
    text = head + (f" ({', '.join(figures)})" if figures else "")
    codes = sorted({w.split(":", 1)[0].strip() for w in warnings})
    covered = check.get("classes_covered", check.get("modes_covered"))
    if covered == 0 or ("modes_covered" in check and "mode_kl" not in check):
        return f"{text}: the run has not learned the data; {NOT_LEARNED_ADVICE}"
    if step is not None and step < t.warmup_steps:
        return f"{text}: too early to judge (step {step:,}; checks judge collapse from step {t.warmup_steps:,})"
    if collapse_reasons(check, 0.0, t):
        what = TOY_COLLAPSE_ADVICE if "modes_covered" in check else advice or ADVICE["mode_collapse"]
        return f"{text}: collapsed; {what}"
    others = [c for c in codes if c != "mode_collapse"]
    if "mode_collapse" in codes:
        others.insert(0, "mode_collapse (recovered)")
    if others:
        return f"{text}; warnings during the run: {', '.join(others)}"
    return f"{text}: no warnings"
