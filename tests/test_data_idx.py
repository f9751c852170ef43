"""IDX reading: round trips, and clean errors for wrong magic, truncation and mismatched counts."""

from __future__ import annotations

import gzip

import numpy as np
import pytest

from ganforge.data import idx, load_dataset
from ganforge.errors import DataError


@pytest.fixture
def arrays():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (7, 5, 4), dtype=np.uint8), rng.integers(0, 10, 7, dtype=np.uint8)


@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_round_trip(tmp_path, arrays, suffix):
    images, labels = arrays
    idx.write_idx(tmp_path / f"x-images-idx3-ubyte{suffix}", images)
    idx.write_idx(tmp_path / f"x-labels-idx1-ubyte{suffix}", labels)
    got_images, got_labels = idx.read_pair(
        tmp_path / f"x-images-idx3-ubyte{suffix}", tmp_path / f"x-labels-idx1-ubyte{suffix}"
    )
    assert got_images.dtype == np.uint8 and np.array_equal(got_images, images)
    assert np.array_equal(got_labels, labels)
    assert idx.peek_magic(tmp_path / f"x-images-idx3-ubyte{suffix}") == idx.IMAGES_MAGIC


def test_wrong_magic_names_file_and_magic(tmp_path, arrays):
    path = tmp_path / "x-labels-idx1-ubyte"
    idx.write_idx(path, arrays[1])
    with pytest.raises(DataError, match=r"x-labels-idx1-ubyte.*magic number 2049, expected 2051"):
        idx.read_images(path)


def test_truncated_file(tmp_path, arrays):
    path = tmp_path / "x-images-idx3-ubyte"
    idx.write_idx(path, arrays[0])
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(DataError, match=r"x-images-idx3-ubyte: truncated: expected 156 bytes .* found 146"):
        idx.read_images(path)
    path.write_bytes(b"\x00\x00\x08")
    with pytest.raises(DataError, match="truncated"):
        idx.read_images(path)


def test_truncated_gzip(tmp_path, arrays):
    path = tmp_path / "x-images-idx3-ubyte.gz"
    data = gzip.compress(np.zeros(5000, np.uint8).tobytes())
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match=r"x-images-idx3-ubyte.gz: truncated or corrupt gzip"):
        idx.read_images(path)


def test_count_mismatch(tmp_path, arrays):
    images, labels = arrays
    idx.write_idx(tmp_path / "a-images-idx3-ubyte", images)
    idx.write_idx(tmp_path / "a-labels-idx1-ubyte", labels[:5])
    with pytest.raises(DataError, match=r"a-labels-idx1-ubyte holds 5 labels but .*a-images-idx3-ubyte holds 7"):
        idx.read_pair(tmp_path / "a-images-idx3-ubyte", tmp_path / "a-labels-idx1-ubyte")


def test_idx_folder_concatenates_in_name_order(tmp_path, arrays):
    images, labels = arrays
    idx.write_idx(tmp_path / "b-images-idx3-ubyte.gz", images[3:])
    idx.write_idx(tmp_path / "b-labels-idx1-ubyte.gz", labels[3:])
    idx.write_idx(tmp_path / "a-images-idx3-ubyte", images[:3])
    idx.write_idx(tmp_path / "a-labels-idx1-ubyte", labels[:3])
    (tmp_path / "README.md").write_text("not IDX")
    ds = load_dataset(f"idx:{tmp_path}")
    assert ds.name == "idx" and ds.split == "all" and ds.images.shape == (7, 1, 5, 4)
    assert np.array_equal(ds.images[:, 0].numpy(), images) and ds.labels.tolist() == labels.tolist()
    assert ds.num_classes == int(labels.max()) + 1


def test_idx_folder_labels_all_or_none(tmp_path, arrays):
    images, labels = arrays
    idx.write_idx(tmp_path / "a-images-idx3-ubyte", images)
    idx.write_idx(tmp_path / "a-labels-idx1-ubyte", labels)
    idx.write_idx(tmp_path / "b-images-idx3-ubyte", images)
    ds = load_dataset(f"idx:{tmp_path}")
    assert len(ds) == 14 and ds.labels is None and ds.num_classes == 0


def test_idx_folder_errors(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"idx:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no IDX images files"):
        load_dataset(f"idx:{tmp_path}")
    (tmp_path / "x-images-idx3-ubyte").write_bytes(b"\x00\x00\x08\x01" + bytes(8))
    with pytest.raises(DataError, match="x-images-idx3-ubyte: not an IDX images file: magic number 2049"):
        load_dataset(f"idx:{tmp_path}")
