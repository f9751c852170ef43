"""The shipped extractors: hash-checked loading, automatic choice, input conversion and refusal."""

import logging
import shutil
from dataclasses import replace

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from ganforge.data import load_dataset, to_float
from ganforge.errors import CheckpointError, ConfigError
from ganforge.metrics import extract_features
from ganforge.metrics.extractors import (
    SHIPPED,
    WEIGHTS_DIR,
    ColourNet,
    DigitNet,
    load_extractor,
    recorded_hashes,
    resolve_extractor_name,
)
from ganforge.metrics.features import extract, prepare_images


def test_every_shipped_extractor_is_small_and_its_hash_is_recorded():
    sums = recorded_hashes()
    for name, file in SHIPPED.items():
        path = WEIGHTS_DIR / file
        assert path.stat().st_size < 2_000_000
        assert file in sums
        assert load_extractor(name).sha256 == sums[file]


def test_a_damaged_weights_file_is_refused(tmp_path):
    shutil.copytree(WEIGHTS_DIR, tmp_path / "weights")
    path = tmp_path / "weights" / SHIPPED["mnist"]
    data = bytearray(path.read_bytes())
    data[-100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="sha256 .* but the package records"):
        load_extractor("mnist", weights_dir=tmp_path / "weights")
    (tmp_path / "weights" / "SHA256SUMS").write_text("")
    with pytest.raises(CheckpointError, match="no sha256 is recorded"):
        load_extractor("mnist", weights_dir=tmp_path / "weights")


def test_extractor_choice_and_unknown_names():
    assert resolve_extractor_name(None, "mnist") == "mnist"
    assert resolve_extractor_name(None, "mnist-sample") == "mnist"
    assert resolve_extractor_name(None, "idx:/data/digits") == "mnist"
    assert resolve_extractor_name(None, "fashion-mnist") == "fashion-mnist"
    assert resolve_extractor_name("fashion-mnist", "mnist") == "fashion-mnist"
    with pytest.raises(ConfigError, match="unknown extractor 'vgg'; use one of mnist, fashion-mnist, emoji, inception"):
        resolve_extractor_name("vgg", "mnist")
    with pytest.raises(ConfigError, match="unknown extractor"):
        extract_features(torch.zeros(2, 1, 28, 28), extractor="vgg")


def test_inception_without_its_weights_file_says_where_one_comes_from(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))  # not this machine's torch.hub cache
    monkeypatch.setenv("GANFORGE_INCEPTION_WEIGHTS", str(tmp_path / "missing.pth"))
    with pytest.raises(ConfigError, match="missing.pth do not exist") as info:
        load_extractor("inception")
    assert "weights-inception-2015-12-05-6726825d.pth" in str(info.value) and "--inception-weights" in str(info.value)
    monkeypatch.delenv("GANFORGE_INCEPTION_WEIGHTS")
    with pytest.raises(ConfigError, match="never downloads it.*pt_inception-2015-12-05-6726825d.pth"):
        load_extractor("inception")


def test_features_of_real_digits_separate_the_classes():
    ds = load_dataset("mnist-sample")
    x = to_float(ds.images[::10])
    ext = load_extractor("mnist")
    feats, probs = extract(x, ext)
    assert feats.shape == (500, 128) and probs.shape == (500, 10)
    assert (probs.argmax(1) == ds.labels[::10].numpy()).mean() > 0.95  # measured 1.0 (training digits)
    assert extract_features(ds.images[:7], extractor="mnist").shape == (7, 128)  # uint8 accepted


def test_real_test_digits_are_classified(shared_mnist):
    ds = load_dataset("mnist", split="test", data_dir=shared_mnist)
    _, probs = extract(to_float(ds.images[:2000]), load_extractor("mnist"))
    assert (probs.argmax(1) == ds.labels[:2000].numpy()).mean() > 0.97  # measured 0.991


def test_other_sizes_and_rgb_are_converted_with_a_warning(caplog):
    ext = load_extractor("mnist")
    with caplog.at_level(logging.WARNING):
        x = prepare_images(torch.zeros(3, 3, 32, 32), ext)
    assert x.shape == (3, 1, 28, 28)
    assert "RGB images to grey" in caplog.text and "from 32x32 to 28x28" in caplog.text


def test_toy_points_and_odd_channels_are_refused():
    ext = load_extractor("mnist")
    with pytest.raises(ConfigError, match="not images.*toy"):
        prepare_images(torch.zeros(10, 2, 1, 1), ext)
    with pytest.raises(ConfigError, match="1 \\(grey\\) or 3 \\(RGB\\) channels; got 4"):
        prepare_images(torch.zeros(2, 4, 28, 28), ext)


def test_shipped_mnist_extractor_meets_its_accuracy(shared_mnist):
    from ganforge.metrics.train_extractor import check

    # Fixed weights and data: only float rounding moves this (a handful of the 10,000); measured 0.9934.
    assert check("mnist", data_dir=str(shared_mnist)) >= 0.985


def test_shipped_fashion_extractor_meets_its_accuracy():
    from pathlib import Path

    from ganforge.metrics.train_extractor import check

    if not Path("/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz").exists():
        pytest.skip("needs Debian's Fashion-MNIST: apt-get install dataset-fashion-mnist")
    assert check("fashion-mnist") >= 0.90  # measured 0.9112


@pytest.mark.parametrize("name", ["mnist", "emoji"])
def test_the_loaded_extractors_fold_their_batchnorms_and_compute_the_same_features(name):
    """for_inference folds each BatchNorm into the layer before it (about 2x faster on a CPU): the same features."""
    loaded = load_extractor(name)
    assert not any(isinstance(m, nn.modules.batchnorm._BatchNorm) for m in loaded.net.modules())
    plain = ColourNet(loaded.num_classes, 99, 6) if name == "emoji" else DigitNet(loaded.num_classes)
    plain.load_state_dict(load_file(str(WEIGHTS_DIR / SHIPPED[name])))  # the same weights, not folded
    plain.eval()
    x = torch.rand(64, *loaded.input_shape) * 2 - 1
    (f_folded, p_folded), (f_plain, p_plain) = extract(x, loaded), extract(x, replace(loaded, net=plain))
    assert np.abs(f_folded - f_plain).max() <= 1e-4 * np.abs(f_plain).max()
    assert np.abs(p_folded - p_plain).max() <= 1e-5
