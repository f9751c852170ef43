"""The quality probe and the monitor: each warning on a synthetic run, once per episode, and none on a healthy one."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
import torch
from torch import nn

from ganforge import probe as probe_module
from ganforge.config import ModelConfig
from ganforge.data import load_dataset, make_toy, to_float
from ganforge.diagnostics import Monitor, Thresholds, summary_line
from ganforge.models import build_generator
from ganforge.presets import PRESETS
from ganforge.probe import QualityProbe, extractor_for


def _healthy(step: int) -> dict[str, float]:
    wobble = (step // 100) % 3 * 0.01  # losses move a little every log step
    row = {"loss_d": 1.2 + wobble, "loss_g": 0.9 - wobble, "d_real": 0.65, "d_fake": 0.35, "grad_norm_d": 2.0}
    if step % 1_000 == 0:
        row.update({"classes_covered": 10.0, "num_classes": 10.0, "mode_kl": 0.03, "diversity_ratio": 0.95})
    return row


def _run(monitor: Monitor, rows: dict[int, dict[str, float]]) -> list[tuple[int, str]]:
    return [(step, w) for step, row in sorted(rows.items()) for w in monitor.observe(step, row)]


def _codes(raised: list[tuple[int, str]]) -> list[tuple[int, str]]:
    return [(step, w.split(":", 1)[0]) for step, w in raised]


STEPS = range(100, 10_001, 100)


def test_a_healthy_run_raises_nothing():
    assert _run(Monitor(), {s: _healthy(s) for s in STEPS}) == []


def test_d_wins_once_per_episode_after_a_long_stretch():
    rows = {s: _healthy(s) for s in STEPS}
    for s in [*range(1_000, 3_001, 100), *range(6_000, 7_001, 100)]:
        rows[s]["d_fake"] = 0.01
    raised = _run(Monitor(), rows)
    assert _codes(raised) == [(2_000, "d_wins"), (7_000, "d_wins")]  # 1,000 steps into each stretch
    assert "D(G(z)) below 0.05 since step 1000" in raised[0][1] and "try" in raised[0][1]
    rows[6_500]["d_fake"] = 0.2  # a stretch broken before it is long enough raises nothing
    assert _codes(_run(Monitor(), rows)) == [(2_000, "d_wins")]


def test_g_wins_when_d_calls_fakes_real():
    rows = {s: _healthy(s) for s in STEPS}
    for s in range(4_000, 6_001, 100):
        rows[s].update(d_real=0.99, d_fake=0.98)
    raised = _run(Monitor(), rows)
    assert _codes(raised) == [(5_000, "g_wins")]
    assert "D(G(z)) 0.980, D(x) 0.990" in raised[0][1]


def test_loss_stalled_and_nonfinite():
    rows = {s: _healthy(s) for s in STEPS}
    for s in range(3_000, 4_001, 100):
        rows[s].update(loss_d=0.0, loss_g=27.631021)
    rows[8_000]["loss_d"] = float("nan")
    rows[8_100]["loss_g"] = float("inf")
    rows[9_000]["loss_d"] = float("nan")
    raised = _run(Monitor(), rows)
    assert _codes(raised) == [(3_400, "loss_stalled"), (8_000, "nonfinite"), (9_000, "nonfinite")]
    assert raised[0][1].startswith("loss_stalled: loss_d 0.0 and loss_g 27.631021 unchanged since step 3000")


def test_mode_collapse_after_the_warm_up_on_consecutive_checks():
    rows = {s: _healthy(s) for s in STEPS}
    rows[1_000].update(classes_covered=1.0, mode_kl=2.27, diversity_ratio=0.1)  # a young G: not judged yet
    assert _run(Monitor(), rows) == []
    for s in range(3_000, 6_001, 1_000):
        rows[s].update(classes_covered=2.0, mode_kl=1.6, diversity_ratio=0.6)
    raised = _run(Monitor(), rows)
    assert _codes(raised) == [(4_000, "mode_collapse")]
    message = raised[0][1]
    assert "2 of 10 classes covered, down from 10" in message and "mode KL 1.60" in message
    assert "--augment ada" in message and "seed-stable" in message
    rows[8_000].update(classes_covered=10.0, mode_kl=0.9)  # KL alone, one check: not yet
    rows[9_000].update(mode_kl=0.9)
    assert _codes(_run(Monitor(), rows)) == [(4_000, "mode_collapse"), (9_000, "mode_collapse")]


def test_toy_and_pixel_checks_feed_the_monitor():
    monitor = Monitor()
    toy = {"modes_covered": 8.0, "num_modes": 8.0, "high_quality": 0.1, "mode_kl": 0.01}
    assert monitor.observe(2_000, toy) == [] and monitor.observe(3_000, toy) == []  # blurry is not collapsed
    lost = {**toy, "modes_covered": 3.0, "mode_kl": 0.9}
    assert monitor.observe(4_000, lost) == []
    message = monitor.observe(5_000, lost)[0]
    assert message.startswith("mode_collapse: 3 of 8 modes covered, down from 8") and "--minibatch-std" in message
    pixels = Monitor()
    assert pixels.observe(2_000, {"diversity_ratio": 0.3}) == []
    assert "diversity 0.30" in pixels.observe(3_000, {"diversity_ratio": 0.3})[0]


def test_state_dict_round_trip_continues_the_same_episodes():
    rows = {s: _healthy(s) for s in STEPS}
    for s in range(1_000, 3_001, 100):
        rows[s]["d_fake"] = 0.01
    for s in range(3_000, 6_001, 1_000):
        rows[s].update(classes_covered=2.0, mode_kl=1.6)
    whole = _run(Monitor(), rows)
    first = Monitor()
    before = _run(first, {s: r for s, r in rows.items() if s <= 2_500})
    state = json.loads(json.dumps(first.state_dict()))  # plain data, as a checkpoint stores it
    resumed = Monitor()
    resumed.load_state_dict(state)
    after = _run(resumed, {s: r for s, r in rows.items() if s > 2_500})
    assert before + after == whole and len(whole) == 2
    assert resumed.raised == [(2_000, "d_wins"), (4_000, "mode_collapse")]


def test_thresholds_can_be_changed():
    monitor = Monitor(Thresholds(d_fake_low=0.5, stretch_steps=0, stretch_logs=1))
    assert monitor.observe(100, _healthy(100))[0].startswith("d_wins")


def test_summary_line():
    collapsed = {"classes_covered": 2.0, "num_classes": 10.0, "mode_kl": 0.91, "diversity_ratio": 0.6, "fid_2k": 35.1}
    line = summary_line(collapsed, ["mode_collapse: ..."])
    assert line.startswith("covered 2 of 10 classes (mode KL 0.91, diversity 0.60 of the data's, FID(2k) 35.1)")
    assert "collapsed; try --augment ada" in line and "\n" not in line
    healthy = {"classes_covered": 10.0, "num_classes": 10.0, "mode_kl": 0.02, "diversity_ratio": 0.97}
    assert summary_line(healthy, []).endswith(": no warnings")
    assert summary_line(healthy, ["d_wins: x", "mode_collapse: y"]).endswith(
        "warnings during the run: mode_collapse (recovered), d_wins"
    )
    toy = {"modes_covered": 8.0, "num_modes": 8.0, "high_quality": 0.68, "mode_kl": 0.01}
    assert summary_line(toy, []) == "covered 8 of 8 modes (68% near a mode, mode KL 0.01): no warnings"


class Replay(nn.Module):
    """A stand-in G that returns the given images in turn (noise ignored): the probe's 'perfect' generator."""

    def __init__(self, images: torch.Tensor, cfg: ModelConfig) -> None:
        super().__init__()
        self.images, self.cfg, self.at = images, cfg, 0
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, z, labels=None):
        out = self.images[self.at : self.at + len(z)]
        self.at = (self.at + len(z)) % len(self.images)
        return torch.cat([out, self.images[: len(z) - len(out)]])


def test_probe_on_digits_sees_real_data_untrained_and_collapsed_generators(monkeypatch):
    monkeypatch.setattr(probe_module, "FID_SAMPLES", 500)  # fewer than a run's, to keep the test fast
    monkeypatch.setattr(probe_module, "FID_REFERENCE", 1_000)
    data = load_dataset("mnist-sample")
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=16, width=16)
    probe = QualityProbe.build(cfg, data, seed=0, n=500)
    assert probe.kind == "classes" and probe.extractor.name == "mnist"
    shuffled = torch.randperm(len(data), generator=torch.Generator().manual_seed(1))
    real = to_float(data.images[shuffled]).float()
    seen = probe.check(Replay(real, cfg))
    assert seen["classes_covered"] == 10 and seen["mode_kl"] < 0.05 and 0.9 < seen["diversity_ratio"] < 1.1
    two = probe.check(Replay(real[data.labels[shuffled] < 2], cfg))  # zeros and ones only
    assert two["classes_covered"] == 2 and two["mode_kl"] > 1.0 and two["diversity_ratio"] < 0.8
    torch.manual_seed(0)
    untrained = probe.check(build_generator(cfg))
    assert untrained["classes_covered"] <= 2 and untrained["mode_kl"] > 1.0 and untrained["diversity_ratio"] < 0.5
    assert probe.fid_2k(Replay(real, cfg)) < 5 < probe.fid_2k(build_generator(cfg))


def test_probe_on_toy_points_sees_real_data_and_an_untrained_generator():
    cfg = PRESETS["toy-ring"].model
    probe = QualityProbe.build(cfg, load_dataset("toy:ring8"), seed=0)
    assert probe.kind == "toy"
    points, labels = make_toy("ring8", seed=1)
    real = probe.check(Replay(points, cfg))
    assert (
        real["modes_covered"] == 8 and real["high_quality"] > 0.97
    )  # 3 std in 2-D hold 98.9%; and real["mode_kl"] < 0.01
    three = probe.check(Replay(points[labels < 3], cfg))
    assert three["modes_covered"] == 3 and three["mode_kl"] > 0.9  # log(8/3) = 0.98
    torch.manual_seed(0)
    assert probe.check(build_generator(cfg))["high_quality"] < 0.1


@pytest.mark.slow
def test_probe_on_a_toy_ring_trained_vs_untrained(tmp_path):
    from ganforge.checkpoint import load_generator
    from ganforge.train import train

    cfg = dataclasses.replace(PRESETS["toy-ring"], steps=2_000, out_dir=str(tmp_path / "ring"))
    probe = QualityProbe.build(cfg.model, load_dataset("toy:ring8"), seed=0)
    torch.manual_seed(0)
    before = probe.check(build_generator(cfg.model))
    after = probe.check(load_generator(train(cfg).run_dir))
    # Measured after 2,000 steps of today's preset (D on pairs), seeds 0/1/2 with 1 thread: 8/8/8 modes, 46/50/47%
    # near a mode, mode KL 0.007/0.011/0.005 (seed 0 the same with 2 threads); the untrained G: 0 modes, 0% near a
    # mode. (The recipe of two rounds before, Adam 5e-4 and no packing: 7/3/6 modes, 27/37/31%.)
    assert after["modes_covered"] >= 3 > before["modes_covered"]
    assert after["high_quality"] > before["high_quality"] + 0.1


def test_probe_without_an_extractor_measures_pixel_diversity():
    assert extractor_for("folder:x", (1, 28, 28)) is None and extractor_for("fashion-mnist", (1, 28, 28))
    cfg = ModelConfig(arch="mlp", image_size=16, channels=3, z_dim=8, width=16)
    images = torch.randint(0, 256, (200, 3, 16, 16), dtype=torch.uint8)
    from ganforge.data import Dataset

    probe = QualityProbe.build(cfg, Dataset("folder:x", "x", images, None, 0, "all", "test"), seed=0, n=200)
    assert probe.kind == "pixels"
    assert 0.9 < probe.check(Replay(to_float(images).float(), cfg))["diversity_ratio"] < 1.1
    assert probe.check(Replay(to_float(images[:1]).float().expand(200, -1, -1, -1), cfg))["diversity_ratio"] == 0
    assert probe.fid_2k(Replay(to_float(images).float(), cfg)) is None


def test_a_toy_run_with_no_sample_near_a_mode_has_not_learned_the_data():
    """Issue 29: toy-ring after 600 steps was "covered 0 of 8 modes ... mode KL 0.01: no warnings"."""
    from ganforge.data.toy import toy_modes
    from ganforge.metrics import toy

    centers, std = toy_modes("toy:ring8")
    spread = torch.randn(2_000, 2, generator=torch.Generator().manual_seed(0)) * 0.05  # all near the origin
    assert toy.near_mode_histogram(spread, centers, std) is None
    assert toy.mode_histogram(spread, centers, std).sum() == pytest.approx(1.0)  # nearest modes still exist
    check = {"modes_covered": 0.0, "num_modes": 8.0, "high_quality": 0.0}
    line = summary_line(check, [], step=600)
    assert "has not learned the data" in line and "mode KL undefined" in line and "no warnings" not in line
    images = {"classes_covered": 0.0, "num_classes": 10.0, "mode_kl": 2.3, "diversity_ratio": 0.1}
    assert "has not learned the data" in summary_line(images, [], step=5_000)


def test_a_short_run_is_too_early_to_judge_not_collapsed():
    """Issue 29: every short run was judged collapsed, with advice to try seed-stable or dcgan, even mnist-hq."""
    young = {"classes_covered": 1.0, "num_classes": 10.0, "mode_kl": 2.2, "diversity_ratio": 0.2}
    line = summary_line(young, [], step=400)
    assert "too early to judge" in line and "collapsed" not in line and "--preset" not in line
    assert "collapsed" in summary_line(young, [], step=4_000)


def test_collapse_advice_never_points_at_a_worse_preset():
    from ganforge.diagnostics import PRESET_LADDER, collapse_advice

    assert collapse_advice("seed") == "try --augment ada, or --preset seed-stable / --preset dcgan / --preset mnist-hq"
    assert "seed-stable" not in collapse_advice("dcgan") and "mnist-hq" in collapse_advice("dcgan")
    assert "--preset" not in collapse_advice("mnist-hq") and "--preset" not in collapse_advice("fashion-mnist")
    assert "--augment ada" not in collapse_advice("mnist-hq", augment="ada")
    for i, preset in enumerate(PRESET_LADDER):
        named = re.findall(r"--preset ([\w-]+)", collapse_advice(preset))
        assert named == list(PRESET_LADDER[i + 1 :])
    old = {"classes_covered": 3.0, "num_classes": 10.0, "mode_kl": 1.2, "diversity_ratio": 0.6}
    assert summary_line(old, [], step=16_000, advice=collapse_advice("mnist-hq")).endswith(
        "collapsed; try --augment ada"
    )


def test_the_probes_reference_figures_are_cached_for_the_next_start(monkeypatch):
    """Issue 29: the checks cost a third of a seed run; the 10,000-image FID reference was most of it, every start."""
    from ganforge.metrics import cache

    monkeypatch.setattr(probe_module, "FID_REFERENCE", 1_500)  # fewer images, the same path
    data = load_dataset("mnist-sample")
    model = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    G = build_generator(model)
    first = QualityProbe.build(model, data, seed=3)
    fid = first.fid_2k(G)
    computed = []
    real_extract = probe_module.extract
    monkeypatch.setattr(probe_module, "extract", lambda x, *a, **k: computed.append(len(x)) or real_extract(x, *a, **k))
    second = QualityProbe.build(model, data, seed=3)
    assert second.real_diversity == first.real_diversity and np.array_equal(second.real_hist, first.real_hist)
    assert second.fid_2k(G) == fid
    assert computed == [2_000]  # only the generated samples went through the extractor: the references were read
    for path in cache.metrics_cache_dir().glob("probe-*.safetensors"):
        path.write_bytes(path.read_bytes()[:-8] + b"\0" * 8)  # corrupt the cached tensors
    third = QualityProbe.build(model, data, seed=3)
    assert third.real_diversity == first.real_diversity and third.fid_2k(G) == fid


def test_the_end_of_run_check_shares_its_samples_with_the_fid(monkeypatch):
    """Issue 29, item 7: the last check's 1,000 samples are half of the end-of-run FID's 2,000, so one run's end sends
    2,000 samples through the extractor, not 3,000; and the references serve every seed (cached once per data)."""
    monkeypatch.setattr(probe_module, "FID_REFERENCE", 1_500)
    data = load_dataset("mnist-sample")
    model = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    torch.manual_seed(0)
    G = build_generator(model)
    QualityProbe.build(model, data, seed=5).fid_2k(G)  # fills the reference caches
    computed = []
    real_extract = probe_module.extract
    monkeypatch.setattr(probe_module, "extract", lambda x, *a, **k: computed.append(len(x)) or real_extract(x, *a, **k))
    probe = QualityProbe.build(model, data, seed=6)  # another seed: the same cached references
    final = probe.final_check(G)
    assert computed == [1_000, 1_000]
    check = probe.check(G)
    assert {k: final[k] for k in check} == check
    reused = real_extract(probe._samples(G, probe.z, probe.labels), probe.extractor)[0]
    assert final["fid_2k"] == round(probe.fid_2k(G, reuse=reused), 4)
    shuffled = to_float(data.images[torch.randperm(len(data))]).float()
    assert probe.final_check(Replay(shuffled, model))["fid_2k"] < 5 < final["fid_2k"]


def test_a_conditional_probe_draws_the_classes_in_the_training_data_s_mix():
    """The emoji groups are 59% People & Body: checks drawing the groups in turn scored a mode KL of ~0.5 from that."""
    from ganforge.data import Dataset

    labels = torch.tensor([0] * 60 + [1] * 30 + [2] * 10)
    images = torch.randint(0, 256, (100, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    data = Dataset("tiny", "tiny", images, labels, 3, "train", "test fixture")
    model = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=4, width=8, num_classes=3)
    probe = QualityProbe.build(model, data, seed=0, n=200)
    assert torch.bincount(probe.labels).tolist() == [120, 60, 20]
    assert set(probe.labels[:10].tolist()) == {0, 1, 2}  # mixed along the way, not in blocks
