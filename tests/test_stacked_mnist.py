"""Stacked MNIST: the fixed data set (three digits a sample, 1,000 classes) and its mode metrics in eval."""

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.metrics
from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.data import SPECS, load_dataset, to_float
from ganforge.data import stacked as stacked_data
from ganforge.data.mnist import load_sample
from ganforge.errors import ConfigError, DataError
from ganforge.metrics import default_samples, evaluate, format_table
from ganforge.metrics.calibrate import collapsed_stack
from ganforge.metrics.classifier_score import classifier_score
from ganforge.metrics.stacked import joint_probs, stacked_scores, triples
from ganforge.models import build_generator

# A small protocol for the tests that run the real extractor: a few seconds instead of a minute.
SMALL = {"reference_count": 1_000, "kid_subsets": 5, "kid_subset_size": 200}


@pytest.fixture(scope="module")
def module_home(tmp_path_factory):
    return tmp_path_factory.mktemp("stacked_home")


@pytest.fixture
def cached_reference(_offline_home, module_home, monkeypatch):
    """One offline GANFORGE_HOME for this module's evaluations, so the reference features are built once."""
    monkeypatch.setenv("GANFORGE_HOME", str(module_home))


@pytest.fixture(scope="module")
def digits():
    """The 5,000 mnist-sample digits (N, 1, 28, 28) uint8 and their labels: the offline training digits."""
    images, labels, _ = load_sample()
    return torch.from_numpy(images).unsqueeze(1), torch.from_numpy(labels.astype(np.int64))


def one_hot(triple_labels):
    """(N, 3, 10) certain digit probabilities of the given (N,) triple labels."""
    t = np.asarray(triple_labels)
    return np.eye(10, dtype=np.float32)[np.stack([t // 100, t // 10 % 10, t % 10], 1)]


def test_the_training_set_is_fixed_and_the_same_bytes_every_call():
    a = load_dataset("stacked-mnist", download=False)
    b = load_dataset("stacked-mnist", download=False)
    assert a.images.shape == (50_000, 3, 28, 28) and a.images.dtype == torch.uint8
    assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels)
    assert a.num_classes == 1000 and len(a.class_names) == 1000 and a.split == "train"
    assert a.name == "stacked-mnist-sample"  # offline the digits are mnist-sample's, and the name says so
    # The same bytes on every machine: the picks come from torch's CPU generator with a fixed seed, so a
    # digest recorded once holds anywhere (it changes only if the digits or torch's generator change).
    digest = hashlib.sha256(a.images[:100].numpy().tobytes() + a.labels.numpy().tobytes()).hexdigest()
    assert digest[:16] == "b60794327d4f65a7"


def test_labels_are_the_digits_stacked(digits):
    images, labels = digits
    stacked, stacked_labels, picks = stacked_data.stack_digits(images, labels, 500, seed=stacked_data.SEEDS["train"])
    ds = load_dataset("stacked-mnist", download=False)
    assert torch.equal(stacked, ds.images[:500]) and torch.equal(stacked_labels, ds.labels[:500])
    for i in (0, 1, 17, 499):
        r, g, b = picks[i].tolist()
        assert torch.equal(stacked[i, 0], images[r, 0]) and torch.equal(stacked[i, 2], images[b, 0])
        assert stacked_labels[i] == 100 * labels[r] + 10 * labels[g] + labels[b]
        name = ds.class_names[int(stacked_labels[i])]
        assert name == f"{labels[r]}-{labels[g]}-{labels[b]}"
    # Channels are drawn independently: every digit in every channel, and not the same picks across channels.
    assert all(len(set((ds.labels // place % 10).tolist())) == 10 for place in (100, 10, 1))
    assert len(set(ds.labels.tolist())) == 1000


def test_the_test_split_is_stacked_from_the_test_digits_with_its_own_seed(shared_mnist):
    test = load_dataset("stacked-mnist", split="test", data_dir=shared_mnist)
    digits = load_dataset("mnist", split="test", data_dir=shared_mnist)
    again = stacked_data.stack_digits(digits.images, digits.labels, 10_000, seed=stacked_data.SEEDS["test"])
    assert test.images.shape == (10_000, 3, 28, 28) and test.name == "stacked-mnist" and test.split == "test"
    assert torch.equal(test.images, again[0]) and torch.equal(test.labels, again[1])
    assert len(set(test.labels.tolist())) == 1000


def test_the_spec_is_listed_and_refuses_a_one_channel_model(capsys):
    assert "stacked-mnist" in SPECS
    assert main(["data", "list"]) == 0
    assert "stacked-mnist" in capsys.readouterr().out
    with pytest.raises(DataError, match="stacked-mnist images have 3 channels"):
        load_dataset("stacked-mnist", channels=1, download=False)


def test_a_perfect_histogram_covers_every_mode_with_a_small_kl():
    # 26,000 uniform triples: KL measured 0.0176-0.0202 over seeds 0-9 (expected (1000 - 1) / 52,000 = 0.019).
    rng = np.random.default_rng(0)
    scores = stacked_scores(one_hot(rng.integers(0, 1000, 26_000)))
    assert scores["stacked_modes"] == 1000
    assert 0.01 < scores["stacked_kl"] < 0.03
    even = stacked_scores(one_hot(np.repeat(np.arange(1000), 26)))
    assert even == {"stacked_modes": 1000, "stacked_kl": 0.0, "stacked_confident": 1.0}


def test_a_collapsed_histogram_counts_its_modes_exactly():
    chosen = np.random.default_rng(1).choice(1000, 100, replace=False)
    scores = stacked_scores(one_hot(np.repeat(chosen, 260)))
    assert scores["stacked_modes"] == 100
    assert scores["stacked_kl"] == pytest.approx(math.log(10))  # 100 even modes of 1,000
    one = stacked_scores(one_hot(np.full(50, 123)))
    assert one["stacked_modes"] == 1 and one["stacked_kl"] == pytest.approx(math.log(1000))


def test_the_confident_share_needs_all_three_digits_at_half_or_more():
    p = one_hot([111, 222, 333, 444])
    p[1, 0] = 0.1  # R of sample 1: ten-way tie, max 0.1
    p[2, 2] = np.full(10, 0.02)
    p[2, 2, 7] = 0.82  # B of sample 2: sure enough
    p[3, 1] = 0.0
    p[3, 1, [4, 5]] = 0.5  # G of sample 3: exactly at the threshold
    assert stacked_scores(p)["stacked_confident"] == 0.75
    assert stacked_scores(p, confidence=0.9)["stacked_confident"] == 0.25


def test_joint_probabilities_are_the_product_of_the_channels():
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(10), size=(50, 3)).astype(np.float32)
    joint = joint_probs(p)
    assert joint.shape == (50, 1000)
    np.testing.assert_allclose(joint.sum(1), 1.0, rtol=1e-5)
    assert np.array_equal(joint.argmax(1), triples(p))
    assert joint[7, 305] == pytest.approx(p[7, 0, 3] * p[7, 1, 0] * p[7, 2, 5])
    # The classifier score of certain, even triples is the number of classes: 1,000 works like 10.
    assert classifier_score(joint_probs(one_hot(np.arange(1000)))) == pytest.approx(1000, rel=1e-6)


def test_evaluate_scores_real_stacked_digits_and_sees_collapse(digits, cached_reference):
    images, labels = digits
    perfect = stacked_data.stack_digits(images, labels, 1_500, seed=5)[0]
    collapsed, _ = collapsed_stack(images, labels, 100, 1_500, seed=0)
    good = evaluate(images=to_float(perfect), data="stacked-mnist", **SMALL)
    bad = evaluate(images=to_float(collapsed), data="stacked-mnist", **SMALL)
    assert good["n_samples"] == 1_500 and good["extractor"]["per_channel"] is True
    assert good["num_modes"] == 1000  # the generic mode metrics run on the 1,000 triples
    # Measured over stacking seeds 5-7 (collapse seeds 0-2), OMP_NUM_THREADS=1 and 2 alike: perfect 763-770
    # modes (1,500 uniform draws cover 1000 (1 - e^-1.5) = 777 expected), KL 0.39-0.41, 99.8-99.9% confident,
    # FID 4.6-4.7; collapsed 100-103 modes (a misread digit lands on a new triple), KL 2.32-2.34 (log 10 = 2.30),
    # FID 10.2-12.5, and the generic coverage (3+ confident samples) exactly 100.
    assert 700 < good["stacked_modes"] < 850 and good["stacked_kl"] < 0.5 and good["stacked_confident"] > 0.95
    assert 100 <= bad["stacked_modes"] < 150 and bad["stacked_kl"] > 2.0 and 95 <= bad["modes_covered"] <= 105
    assert bad["fid"] > 1.5 * good["fid"] and bad["mode_kl"] > good["mode_kl"] + 1.5
    table = format_table(good)
    assert "stacked modes" in table and "/ 1000" in table and "stacked KL" in table and "per channel" in table


def test_default_sample_count_is_the_published_one():
    assert default_samples("stacked-mnist") == 26_000
    assert default_samples("mnist") == 10_000


def run(*args):
    try:
        return main(["eval", *map(str, args)])
    except SystemExit as e:
        return e.code


def test_cli_scores_a_folder_of_stacked_images_and_prints_the_three_figures(
    tmp_path, digits, cached_reference, monkeypatch, capsys
):
    images, labels = digits
    stacked = stacked_data.stack_digits(images, labels, 1_000, seed=3)[0]
    folder = tmp_path / "images"
    folder.mkdir()
    for i, image in enumerate(stacked):
        Image.fromarray(image.permute(1, 2, 0).numpy(), "RGB").save(folder / f"{i:04d}.png")
    real_evaluate, seen = ganforge.metrics.evaluate, []

    def small_evaluate(*args, **kwargs):  # the real evaluation on a smaller reference
        seen.append(kwargs)
        return real_evaluate(*args, **kwargs, **SMALL)

    monkeypatch.setattr(ganforge.metrics, "evaluate", small_evaluate)
    out = tmp_path / "eval.json"
    assert run("--images", folder, "--data", "stacked-mnist", "--json", out) == 0
    assert seen[0]["n"] is None  # the library picks 26,000; the folder holds fewer, so all are scored
    printed = capsys.readouterr().out
    assert "stacked modes" in printed and "stacked KL" in printed and "stacked confident" in printed
    result = json.loads(out.read_text())
    assert result["n_samples"] == 1_000 and result["stacked_modes"] > 500 and result["stacked_confident"] > 0.95


def test_a_one_channel_generator_is_refused_in_one_line(tmp_path, capsys):
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    file = tmp_path / "generator.safetensors"
    save_generator(file, build_generator(cfg), cfg, {"data": "mnist"})
    assert run(file, "--data", "stacked-mnist") == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error: the generator makes 1-channel images"), err
    assert "stacked-mnist" in err[0]


def test_a_three_channel_generator_is_scored(cached_reference):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=3, z_dim=8, width=16)
    G = build_generator(cfg)
    result = evaluate(G, data="stacked-mnist", n=1_000, **SMALL)
    assert result["n_samples"] == 1_000 and result["stacked_modes"] is not None and result["fid"] > 0
    with pytest.raises(ConfigError, match=r"have shape \(1, 28, 28\)"):
        evaluate(images=torch.zeros(1_000, 1, 28, 28), data="stacked-mnist", **SMALL)
    with pytest.raises(ConfigError, match="scored per channel by the mnist extractor"):
        evaluate(G, data="stacked-mnist", n=1_000, extractor="fashion-mnist", **SMALL)
