"""folder:DIR: mixed sizes and modes, corrupt files skipped and counted, empty and unreadable folders."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data import load_dataset
from ganforge.errors import DataError


def _save(path, mode, size, value=128, fmt=None):
    """One image file of a flat colour in any Pillow mode (16-bit grey and palette too); fmt: Pillow's format name."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if mode == "I;16":
        Image.fromarray(np.full(size[::-1], value * 257, dtype=np.uint16)).save(path)
    elif mode == "P":
        Image.new("RGB", size, (value, 0, 255 - value)).convert("P").save(path)
    else:
        Image.new(mode, size, value if mode == "L" else (value,) * len(mode)).save(path, format=fmt)


@pytest.fixture
def mixed(tmp_path):
    _save(tmp_path / "a.png", "L", (30, 20))
    _save(tmp_path / "b.jpg", "RGB", (64, 64))
    _save(tmp_path / "sub" / "c.png", "RGBA", (10, 40))
    _save(tmp_path / "sub" / "d.gif", "P", (33, 33))
    _save(tmp_path / "e.png", "I;16", (16, 16))
    _save(tmp_path / "f.webp", "RGB", (50, 25))
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    (tmp_path / "notes.txt").write_text("ignored")
    return tmp_path


def test_mixed_folder(mixed, caplog):
    with caplog.at_level(logging.WARNING):
        ds = load_dataset(f"folder:{mixed}", image_size=16)
    assert (ds.name, ds.split, ds.num_classes, ds.labels) == ("folder", "all", 0, None)
    assert ds.images.shape == (6, 3, 16, 16) and ds.images.dtype == torch.uint8
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1 and "skipped 1 unreadable of 7" in warnings[0] and "broken.png" in warnings[0]


def test_channels_and_default_size(mixed):
    grey = load_dataset(f"folder:{mixed}", channels=1)
    assert grey.images.shape == (6, 1, 64, 64)
    # sorted: a, b, e, f, sub/c, sub/d. a.png is grey 128; e.png is 16-bit grey 128*257, scaled (not
    # clipped) to 128; sub/c.png is grey 128 at alpha 128, over white: 191.
    means = [int(image.float().mean().round()) for image in grey.images]
    assert (means[0], means[2], means[4]) == (128, 128, 191)


def test_all_grey_folder_gives_one_channel(tmp_path):
    _save(tmp_path / "a.png", "L", (8, 8), 10)
    _save(tmp_path / "b.png", "RGB", (12, 8), 200)  # grey pixels stored as RGB
    ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert ds.images.shape == (2, 1, 8, 8)
    assert ds.images[0].unique().tolist() == [10] and ds.images[1].unique().tolist() == [200]
    assert load_dataset(f"folder:{tmp_path}", image_size=8, channels=3).images.shape == (2, 3, 8, 8)


def test_empty_missing_and_unreadable_folders(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        load_dataset(f"folder:{tmp_path / 'nope'}")
    with pytest.raises(DataError, match="no images in"):
        load_dataset(f"folder:{tmp_path}")
    (tmp_path / "x.jpg").write_bytes(b"garbage")
    (tmp_path / "y.png").write_bytes(b"")
    with pytest.raises(DataError, match="none of the 2 image files"):
        load_dataset(f"folder:{tmp_path}")


def test_class_subfolders_give_labels(tmp_path):
    # values tell the classes apart after loading: cat 10, dog 200, eel 90 (one eel file is unreadable)
    for name in ("c1", "c2"):
        _save(tmp_path / "cat" / f"{name}.png", "L", (8, 8), 10)
    _save(tmp_path / "dog" / "d1.png", "L", (8, 8), 200)
    _save(tmp_path / "eel" / "deeper" / "e1.png", "L", (8, 8), 90)
    (tmp_path / "eel" / "broken.png").write_bytes(b"not a png")
    (tmp_path / ".hidden").mkdir()
    _save(tmp_path / ".hidden" / "h.png", "L", (8, 8), 0)
    ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert ds.class_names == ("cat", "dog", "eel") and ds.num_classes == 3
    assert ds.labels.dtype == torch.int64 and ds.labels.tolist() == [0, 0, 1, 2]
    assert [int(image[0, 0, 0]) for image in ds.images] == [10, 10, 200, 90]


def test_images_beside_subfolders_are_unlabeled(tmp_path):
    _save(tmp_path / "cat" / "c.png", "L", (8, 8))
    _save(tmp_path / "dog" / "d.png", "L", (8, 8))
    _save(tmp_path / "loose.png", "L", (8, 8))
    ds = load_dataset(f"folder:{tmp_path}", image_size=8)
    assert (ds.labels, ds.num_classes, ds.class_names) == (None, 0, ())
    # a single subfolder is a place to keep images, not a class
    _save(tmp_path / "only" / "sub" / "x.png", "L", (8, 8))
    assert load_dataset(f"folder:{tmp_path / 'only'}", image_size=8).labels is None
