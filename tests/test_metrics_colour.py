"""The colour extractor: shipped with its hash, chosen for colour runs, and ordering a small emoji ladder; an emoji
run trains and evaluates end to end."""

import json

import numpy as np
import pytest
import torch

from ganforge.config import ModelConfig, TrainConfig
from ganforge.data import emoji, load_dataset, to_float
from ganforge.metrics import evaluate
from ganforge.metrics.calibrate import add_noise, blur
from ganforge.metrics.colour_ladder import one_tone, repeat_to, rotate_hue
from ganforge.metrics.extractors import SHIPPED, WEIGHTS_DIR, file_sha256, load_extractor, recorded_hashes
from ganforge.metrics.extractors import resolve_extractor_name as resolve
from ganforge.metrics.features import extract
from ganforge.metrics.fid import frechet_distance
from ganforge.metrics.modes import covered_at, mode_kl, read_histogram
from ganforge.train import train

needs_font = pytest.mark.skipif(
    not emoji.FONT_PATH.is_file() or not emoji.EMOJI_TEST_PATH.is_file(),
    reason=f"needs the Noto colour emoji font and unicode-data: {emoji.INSTALL}",
)


@pytest.fixture(autouse=True)
def _shared_home(emoji_home, monkeypatch):
    """The session's emoji GANFORGE_HOME (conftest): the emoji rendered once, the reference features built once."""
    monkeypatch.setenv("GANFORGE_HOME", str(emoji_home))


@pytest.fixture(scope="module")
def extractor():
    return load_extractor("emoji")


def test_the_shipped_extractor_loads_with_its_recorded_hash(extractor):
    path = WEIGHTS_DIR / SHIPPED["emoji"]
    assert extractor.sha256 == file_sha256(path) == recorded_hashes()[path.name]
    assert extractor.input_shape == (3, 64, 64) and extractor.feature_dim == 96
    assert json.loads(extractor.metadata["class_names"])[0] == "Smileys & Emotion" and extractor.num_classes == 9
    assert float(extractor.metadata["test_accuracy"]) > 0.5  # the measured figure is in docs/colour.md
    features, logits = extractor.net(torch.zeros(2, 3, 64, 64))
    assert features.shape == (2, 96) and logits.shape == (2, 9)


def test_colour_runs_get_the_emoji_extractor_and_digits_keep_theirs():
    assert resolve(None, "emoji") == resolve(None, "emoji:32:subgroup") == "emoji"
    assert resolve(None, "folder:faces", (3, 64, 64)) == "emoji"
    assert resolve(None, "folder:faces", (3, 32, 32)) == resolve(None, "folder:faces", (3, 128, 128)) == "emoji"
    assert resolve(None, "folder:faces", (3, 28, 28)) == "mnist"  # below 32 px: not the colour protocol
    assert resolve(None, "folder:faces", (1, 64, 64)) == "mnist"
    assert resolve(None, "stacked-mnist", (3, 28, 28)) == "mnist"  # read per channel, as published
    assert resolve(None, "mnist", (3, 32, 32)) == "mnist"
    assert resolve("mnist", "emoji") == "mnist"  # told otherwise


def test_hue_rotation_keeps_grey_and_turns_colours():
    rng = torch.Generator().manual_seed(0)
    x = torch.rand(4, 3, 8, 8, generator=rng) * 2 - 1
    assert torch.allclose(rotate_hue(x, 0), x, atol=1e-5) and torch.allclose(rotate_hue(x, 360), x, atol=1e-5)
    assert torch.allclose(rotate_hue(rotate_hue(x, 30), -30), x, atol=1e-5)
    red = torch.tensor([1.0, -1.0, -1.0]).view(1, 3, 1, 1)
    assert torch.allclose(rotate_hue(red, 120), torch.tensor([-1.0, 1.0, -1.0]).view(1, 3, 1, 1), atol=1e-5)
    white = torch.ones(1, 3, 2, 2)
    assert torch.equal(rotate_hue(white, 30), white)


def test_one_tone_maps_each_variant_to_its_medium_sibling():
    codepoints = [(0x1F44B,), (0x1F44B, 0x1F3FB), (0x1F44B, 0x1F3FD), (0x1F44B, 0x1F3FF), (0x1F600,)]
    assert one_tone(codepoints) == [0, 2, 2, 2, 4]


@needs_font
def test_a_small_ladder_is_in_order(extractor):
    """600 training-split emoji against the test split: noise 0.2 > noise 0.05 > floor; blur and one group > floor."""
    found = emoji.load_set(64)
    train_idx = np.flatnonzero(found.mask("train"))
    pick = train_idx[np.random.default_rng(0).permutation(len(train_idx))[:600]]
    floor = to_float(torch.from_numpy(found.images[pick])).float()
    test = to_float(load_dataset("emoji", split="test").images).float()
    ref_features, ref_probs = extract(test, extractor)
    ref_hist = read_histogram(ref_probs)

    def score(images):
        features, probs = extract(images, extractor)
        return frechet_distance(features, ref_features), mode_kl(read_histogram(probs), ref_hist)

    smileys = floor[torch.from_numpy(found.labels("group")[pick] == 0)]
    fid_floor, kl_floor = score(floor)
    fid_small, _ = score(add_noise(floor, 0.05))
    fid_large, _ = score(add_noise(floor, 0.2))
    fid_blur, _ = score(blur(floor, 1.0, background=1.0))
    fid_hue, _ = score(rotate_hue(floor, 30))
    fid_group, kl_group = score(repeat_to(smileys, 600))
    # The same 600 emoji, damaged or not, and seeded noise: the comparisons are paired and deterministic up to float
    # rounding. Measured: noise 0.05 1.11x the floor (on all 3,288: docs/colour.md), noise 0.2 10x noise 0.05, blur and
    # hue 6x the floor, one group 19x.
    assert fid_small > 1.05 * fid_floor
    assert fid_large > 3 * fid_small
    assert fid_blur > 3 * fid_floor and fid_hue > 3 * fid_floor
    assert fid_group > 5 * fid_floor and kl_group > 1.0 > 10 * kl_floor


@needs_font
def test_held_out_emoji_cover_every_group_at_the_extractors_confidence(extractor):
    """Real emoji the extractor never saw must count as all 9 groups, or no generator can: at the digits' 0.8 they
    did not (4/9 measured: the group head is rarely that sure of an unseen People & Body emoji)."""
    test = to_float(load_dataset("emoji", split="test").images).float()
    result = evaluate(images=test, data="emoji", n=len(test), metrics=["modes"])
    assert result["protocol"]["mode_confidence"] == extractor.mode_confidence < 0.8
    # Measured margin: every group has >= 6 reads at >= 0.5 (the bar is 5 of 367), and a group's nearest read to 0.5
    # sits 0.0009 away, far above what another CPU's kernels change in a probability.
    assert (result["modes_covered"], result["num_modes"]) == (9, 9)
    assert result["mode_kl"] < 1e-9  # the reference itself
    probs = extract(test, extractor)[1]
    assert covered_at(probs, 0.8) < 9


@needs_font
def test_eval_json_names_the_colour_extractor_and_reference(extractor):
    test = load_dataset("emoji", split="test")
    images = to_float(load_dataset("emoji:32").images[:400])
    result = evaluate(images=images, data="emoji", n=400, kid_subsets=3)
    assert {k: result["extractor"][k] for k in ("name", "sha256")} == {"name": "emoji", "sha256": extractor.sha256}
    assert result["extractor"]["resize"].endswith("to 64x64 where sizes differ")
    ref = result["reference"]
    assert (ref["name"], ref["split"], ref["count"]) == ("emoji-32", "test", len(test))  # at the samples' size
    assert ref["identity"]["font_sha256"] == test.identity["font_sha256"]
    assert result["protocol"]["kid_subset_size"] == len(test)  # the 367 reference emoji, not 1,000
    assert result["num_modes"] == 9 and result["fid"] > 0


@needs_font
def test_a_short_emoji_run_trains_and_evaluates(tmp_path):
    cfg = TrainConfig(
        model=ModelConfig(arch="dcgan", image_size=32, channels=3, z_dim=16, width=8, num_classes=9),
        data="emoji",
        steps=4,
        batch_size=16,
        log_every=2,
        checkpoint_every=4,
        sample_every=4,
        device="cpu",
        out_dir=str(tmp_path / "run"),
    )
    result = train(cfg)
    assert result.step == 4
    scores = evaluate(tmp_path / "run", n=400, kid_subsets=2, kid_subset_size=100)
    assert scores["extractor"]["name"] == "emoji" and scores["data"] == "emoji"
    assert scores["reference"]["name"] == "emoji-32" and scores["n_samples"] == 400
    assert scores["class_match"] is not None and np.isfinite(scores["fid"])
