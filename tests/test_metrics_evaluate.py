"""evaluate(): the eval.json contract, generators and images, the cache, bad input, and `ganforge eval`."""

import functools
import json
import logging

import numpy as np
import pytest
import torch
from PIL import Image

import ganforge.metrics
from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.data import load_dataset, to_float
from ganforge.errors import ConfigError
from ganforge.metrics import evaluate, format_table
from ganforge.metrics.cache import metrics_cache_dir
from ganforge.models import build_generator

DESIGN_KEYS = {
    "fid",
    "kid",
    "precision",
    "recall",
    "density",
    "coverage",
    "classifier_score",
    "modes_covered",
    "mode_kl",
    "n_samples",
    "reference",
    "extractor",
}
SMALL = {"reference_count": 600, "kid_subsets": 5, "kid_subset_size": 100}


@pytest.fixture
def generator():
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    return build_generator(cfg)


@pytest.fixture(scope="module")
def digits():
    images = to_float(load_dataset("mnist-sample").images)  # sorted by class: shuffle
    return images[torch.randperm(len(images), generator=torch.Generator().manual_seed(0))]


def test_generator_result_has_the_design_keys_and_leaves_G_in_its_mode(generator):
    generator.train()
    result = evaluate(generator, data="mnist-sample", n=200, **SMALL)
    assert generator.training
    assert DESIGN_KEYS <= set(result)
    assert result["n_samples"] == 200
    assert result["reference"]["count"] == 600 and result["reference"]["name"] in ("mnist", "mnist-sample")
    assert result["extractor"]["name"] == "mnist" and len(result["extractor"]["sha256"]) == 64
    assert result["fid"] > 0 and 0 <= result["precision"] <= 1 and result["num_modes"] == 10
    json.dumps(result)  # eval.json-ready
    assert "FID" in format_table(result) and "200 samples" in format_table(result)


def test_real_digits_score_far_better_than_an_untrained_generator(generator, digits):
    fake = evaluate(generator, data="mnist-sample", n=300, **SMALL)
    real = evaluate(images=digits[-300:], data="mnist-sample", n=300, **SMALL)
    # Over G seeds and digit orders 0-2, 1 thread: real FID 1.5-2.3 against 329-335 for the untrained G,
    # real precision 0.84-0.89 against 0.0.
    assert real["fid"] < fake["fid"] / 2 and real["kid"] < fake["kid"]
    assert real["precision"] > fake["precision"] and real["modes_covered"] == 10


def test_reference_stats_are_cached_and_a_corrupt_cache_is_rebuilt(digits, caplog):
    first = evaluate(images=digits[:200], data="mnist-sample", n=200, metrics=["fid"], **SMALL)
    files = list(metrics_cache_dir().glob("*.safetensors"))
    assert len(files) == 1
    data = bytearray(files[0].read_bytes())
    data[-50] ^= 0xFF  # flip a byte of the stored tensors
    files[0].write_bytes(bytes(data))
    with caplog.at_level(logging.WARNING):
        again = evaluate(images=digits[:200], data="mnist-sample", n=200, metrics=["fid"], **SMALL)
    assert "corrupt" in caplog.text
    assert again["fid"] == pytest.approx(first["fid"], rel=1e-9)
    files[0].write_bytes(b"not a safetensors file")
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        evaluate(images=digits[:200], data="mnist-sample", n=200, metrics=["fid"], **SMALL)
    assert "unreadable" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO):
        evaluate(images=digits[:200], data="mnist-sample", n=200, metrics=["fid"], **SMALL)
    assert "computing reference" not in caplog.text  # the rebuilt file is used


def test_toy_data_is_scored_on_its_points():
    cfg = ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=4, width=8, out_activation="none")
    G = build_generator(cfg)
    result = evaluate(G, data="toy:ring8", n=300, **SMALL)
    assert result["extractor"]["name"] == "coordinates" and result["classifier_score"] is None
    assert result["num_modes"] == 8 and 0 <= result["high_quality"] <= 1
    points = load_dataset("toy:ring8", split="train").images[:300]
    real = evaluate(images=points, data="toy:ring8", n=300, **SMALL)
    # Within 3 std in 2-D: 0.989 expected (0.006 sd at n=300); three other draws of 300 gave 0.987-1.0.
    # FID 0.02-0.03 against 3.6-3.8 for untrained Gs (seeds 0-2).
    assert real["modes_covered"] == 8 and real["high_quality"] > 0.95 and real["fid"] < result["fid"]
    with pytest.raises(ConfigError, match="2-D points; drop extractor"):
        evaluate(images=points, data="toy:ring8", extractor="mnist")
    with pytest.raises(ConfigError, match="not images"):
        evaluate(images=points, data="mnist-sample", n=300, **SMALL)


def test_too_few_samples_names_the_minimum(generator, digits):
    with pytest.raises(ConfigError, match="at least 6 samples"):
        evaluate(generator, data="mnist-sample", n=5)
    with pytest.raises(ConfigError, match="at least 6 samples"):
        evaluate(images=digits[:5], data="mnist-sample", metrics=["precision_recall", "density_coverage"])
    with pytest.raises(ConfigError, match="unknown metrics"):
        evaluate(generator, metrics=["is"])
    with pytest.raises(ConfigError, match="not both or neither"):
        evaluate()


def _small_evaluate(monkeypatch):
    monkeypatch.setattr(ganforge.metrics, "evaluate", functools.partial(evaluate, **SMALL))


def test_cli_eval_a_run_dir_writes_eval_json(tmp_path, generator, monkeypatch, capsys):
    _small_evaluate(monkeypatch)
    run = tmp_path / "run"
    save_generator(run / "generator.safetensors", generator, generator.cfg, {"data": "mnist-sample"})
    assert main(["eval", str(run), "--n", "200"]) == 0
    out = capsys.readouterr().out
    assert "FID" in out and "mnist" in out
    result = json.loads((run / "eval.json").read_text())
    assert DESIGN_KEYS <= set(result) and result["data"] == "mnist-sample"
    assert result["generator"]["sha256"] and result["generator"]["provenance"] == {"data": "mnist-sample"}


def test_cli_eval_a_folder_of_images(tmp_path, digits, monkeypatch):
    _small_evaluate(monkeypatch)
    folder = tmp_path / "pngs"
    folder.mkdir()
    pixels = ((digits[:150, 0] + 1) * 127.5).round().to(torch.uint8).numpy()
    for i, p in enumerate(pixels):
        Image.fromarray(p).save(folder / f"{i:03d}.png")
    out = tmp_path / "out.json"
    assert main(["eval", "--images", str(folder), "--data", "mnist-sample", "--json", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["n_samples"] == 150 and result["images"] == str(folder)
    assert np.isfinite(result["fid"])


def test_cli_eval_user_errors_exit_2(tmp_path, capsys):
    assert main(["eval"]) == 2
    assert main(["eval", str(tmp_path / "nothing")]) == 2
    assert main(["eval", "--images", str(tmp_path / "nothing")]) == 2
    assert main(["eval", "--images", str(tmp_path), "--extractor", "vgg"]) == 2
    err = capsys.readouterr().err
    assert err.count("ganforge: error:") == 4 and "unknown extractor 'vgg'" in err


def _digit_drawer(shift):
    """A conditional 'generator' that returns real digits of class (y + shift) % 10 for the class y asked for."""
    ds = load_dataset("mnist-sample")
    images = to_float(ds.images)
    by_class = [images[ds.labels == c] for c in range(10)]
    G = build_generator(ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16, num_classes=10))
    calls = {"n": 0}

    def forward(z, y):
        out = torch.stack([by_class[(int(c) + shift) % 10][(calls["n"] + i) % 400] for i, c in enumerate(y)])
        calls["n"] += len(y)
        return out

    G.forward = forward
    return G


def test_a_conditional_generator_is_scored_on_whether_it_draws_the_class_asked_for(generator):
    honest = evaluate(_digit_drawer(0), data="mnist-sample", n=300, metrics=["modes"], **SMALL)
    shifted = evaluate(_digit_drawer(1), data="mnist-sample", n=300, metrics=["modes"], **SMALL)
    # Both draw real digits in a uniform class mix, so classes and mode KL cannot tell them apart; class match can.
    assert honest["modes_covered"] == shifted["modes_covered"] == 10
    assert honest["class_match"] > 0.9 and shifted["class_match"] < 0.1
    assert "class match" in format_table(honest)
    assert "class_match" not in evaluate(generator, data="mnist-sample", n=300, metrics=["modes"], **SMALL)


def test_a_few_hundred_images_score_with_a_warning_about_their_spread(digits, caplog):
    """Issue 29: eval refused fewer than 1,000 images, so a 300-image folder could not be scored at all."""
    import logging

    with caplog.at_level(logging.WARNING, logger="ganforge.metrics"):
        result = evaluate(images=digits[:300], data="mnist-sample")
    assert result["n_samples"] == 300 and result["fid"] >= 0 and result["kid"] is not None
    assert result["protocol"]["kid_subset_size"] == 300
    assert 0 < result["fid_bootstrap_std"] < 10 * result["fid"] + 1
    warned = [r.getMessage() for r in caplog.records if "only 300 samples" in r.getMessage()]
    assert len(warned) == 1 and f"std {result['fid_bootstrap_std']:.2f}" in warned[0]
    # 1,000 or more: no warning, no bootstrap.
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="ganforge.metrics"):
        full = evaluate(images=digits[:1000], data="mnist-sample")
    assert "fid_bootstrap_std" not in full and not [r for r in caplog.records if "only" in r.getMessage()]
