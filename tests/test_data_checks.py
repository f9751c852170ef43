"""Data that is what its name says: content digests of mnist/fashion-mnist, --data-dir checks, class counts."""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import pytest
import torch

from ganforge.data import Dataset, check_classes, check_data_dir, list_sources, load_dataset
from ganforge.data import mnist as mnist_files
from ganforge.errors import DataError

FASHION = Path("/usr/share/datasets/fashion-mnist")
TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")


@pytest.fixture
def no_system_fashion(monkeypatch):
    monkeypatch.setitem(mnist_files.SYSTEM_DIRS, "fashion-mnist", ())


def _copy_test_split(src, dest, *, gunzip=False):
    dest.mkdir(parents=True, exist_ok=True)
    for name in TEST_FILES:
        if gunzip:
            (dest / name.removesuffix(".gz")).write_bytes(gzip.decompress((src / name).read_bytes()))
        else:
            shutil.copy(src / name, dest / name)
    return dest


def test_mnist_files_under_fashion_names_are_refused(shared_mnist, tmp_path, no_system_fashion):
    folder = _copy_test_split(shared_mnist, tmp_path / "clothes")
    assert load_dataset("mnist", split="test", data_dir=folder).num_classes == 10  # verified as mnist first
    with pytest.raises(DataError) as info:
        load_dataset("fashion-mnist", split="test", data_dir=folder)
    message = str(info.value)
    assert "\n" not in message and "is not the fashion-mnist file (it holds mnist data)" in message
    assert message.endswith(f"for other IDX data use --data idx:{folder}")
    assert len(load_dataset(f"idx:{folder}")) == 10_000  # as the message says


def test_unzipped_mnist_passes_and_changed_content_is_refused(shared_mnist, tmp_path):
    folder = _copy_test_split(shared_mnist, tmp_path / "plain", gunzip=True)
    ds = load_dataset("mnist", split="test", data_dir=folder)
    assert len(ds) == 10_000 and ds.class_names == tuple("0123456789")
    images = folder / "t10k-images-idx3-ubyte"
    data = bytearray(images.read_bytes())
    data[-1] ^= 0xFF  # one pixel: still a valid IDX file, no longer MNIST
    images.write_bytes(bytes(data))
    with pytest.raises(DataError, match=r"is not the mnist file \(its content has md5 [0-9a-f]{32}, expected 2646ac"):
        load_dataset("mnist", split="test", data_dir=folder)


def test_recompressed_files_pass_by_content(shared_mnist, tmp_path):
    # Debian recompresses its .gz files: other gzip bytes, same content
    folder = tmp_path / "re"
    folder.mkdir()
    for name in TEST_FILES:
        (folder / name).write_bytes(gzip.compress(gzip.decompress((shared_mnist / name).read_bytes()), 1, mtime=0))
    assert len(load_dataset("mnist", split="test", data_dir=folder)) == 10_000


@pytest.mark.skipif(not (FASHION / TEST_FILES[0]).is_file(), reason="Debian's dataset-fashion-mnist is not installed")
def test_real_fashion_mnist_passes():
    ds = load_dataset("fashion-mnist", split="test")
    assert (len(ds), ds.num_classes, ds.source) == (10_000, 10, str(FASHION))
    assert ds.class_names[0] == "T-shirt/top" and ds.class_names[9] == "Ankle boot"


def test_missing_data_dir(tmp_path):
    missing = tmp_path / "nope"
    for load in (lambda: load_dataset("mnist", data_dir=missing), lambda: list_sources(missing)):
        with pytest.raises(DataError, match=f"data dir {missing} does not exist; pass --data-dir a folder"):
            load()
    (tmp_path / "file").write_text("x")
    with pytest.raises(DataError, match="is not a folder"):
        check_data_dir(tmp_path / "file")
    assert check_data_dir(tmp_path) == tmp_path


def test_data_dir_with_only_the_test_split(shared_mnist):
    with pytest.raises(DataError) as info:
        load_dataset("mnist", split="train", data_dir=shared_mnist)
    assert str(info.value) == (
        f"mnist: the training split is missing from {shared_mnist} "
        "(it holds t10k-images-idx3-ubyte.gz, t10k-labels-idx1-ubyte.gz; "
        "expected train-images-idx3-ubyte[.gz], train-labels-idx1-ubyte[.gz]); add those files, "
        f"run `ganforge data prepare mnist --data-dir {shared_mnist}` where a network is, "
        f"or train on the files it has with --data idx:{shared_mnist}"
    )
    with pytest.raises(DataError, match="the training split is missing"):
        load_dataset("mnist", split="all", data_dir=shared_mnist)


def test_data_dir_with_the_set_in_a_subfolder(shared_mnist, tmp_path):
    _copy_test_split(shared_mnist, tmp_path / "mnist")
    with pytest.raises(DataError, match=f"the training split is missing from {tmp_path / 'mnist'} "):
        load_dataset("mnist", data_dir=tmp_path)
    assert len(load_dataset("mnist", split="test", data_dir=tmp_path)) == 10_000


def _labeled(num_classes):
    labels = torch.arange(6) % max(num_classes, 1) if num_classes else None
    return Dataset("mnist", "mnist", torch.zeros(6, 1, 4, 4, dtype=torch.uint8), labels, num_classes, "train", "here")


def test_check_classes():
    check_classes(_labeled(10), 10)
    check_classes(_labeled(0), 0)  # unconditional: anything goes
    with pytest.raises(DataError, match=r"^mnist has 10 classes, not 5; pass --num-classes 10$"):
        check_classes(_labeled(10), 5)
    with pytest.raises(DataError, match="mnist has no labels, and a conditional model .--num-classes 4. needs them"):
        check_classes(_labeled(0), 4)


def test_missing_data_dir_is_not_swallowed_by_the_reference_fallback(tmp_path):
    from ganforge.metrics.reference import load_reference

    with pytest.raises(DataError, match="does not exist"):
        load_reference("mnist", data_dir=tmp_path / "nope")
