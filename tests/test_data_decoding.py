"""The packing decoder's reduced paths (JPEG DCT scaling, reduce(), reducing_gap) against plain full-size filters."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge.data.folder import gc_paused, list_folder
from ganforge.data.pack import open_source, pack, probe_shape
from ganforge.data.packed import open_packed
from ganforge.decoding import _load, decode, draft_scale, filter_for


def _photo(height, width, seed=0):
    """Smooth colour fields, edges and grain: what JPEG codes like a photo (as bench/data_speed.py makes them)."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (height // 32 + 2, width // 32 + 2, 3)).astype(np.uint8)
    smooth = np.asarray(Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC), dtype=np.float32)
    y, x = np.mgrid[0:height, 0:width]
    edges = ((x // 64 + y // 48) % 2 * 40).astype(np.float32)[..., None]
    return np.clip(smooth * 0.8 + edges + rng.normal(0, 6, (height, width, 3)), 0, 255).astype(np.uint8)


def _full(path, size, resample):
    """The plain reference: the whole file decoded at full size, its centre square resized in one call."""
    with Image.open(path) as image:
        image = image.convert("RGB")
        w, h = image.size
        side = min(w, h)
        left, top = (w - side) // 2, (h - side) // 2
        return np.asarray(image.resize((size, size), resample, box=(left, top, left + side, top + side)))


def _psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse)


def test_draft_scales():
    assert filter_for(384, 64) == "box" and filter_for(375, 64) == "lanczos" and filter_for(64, 64) == "none"
    assert filter_for(384, 64, "bicubic") == "bicubic"
    # box with a whole factor k: the largest of 8, 4, 2 dividing k (the DCT scaling then averages inside the blocks)
    assert [draft_scale(64 * k, 64, "box") for k in (2, 3, 4, 6, 8, 12, 16)] == [2, 1, 4, 2, 8, 4, 8]
    # other filters: the largest scale that keeps 2 source pixels a target pixel
    assert [draft_scale(side, 64, "lanczos") for side in (96, 255, 256, 375, 600, 1024)] == [1, 1, 2, 2, 4, 8]
    assert draft_scale(64, 64, "none") == 1 and draft_scale(48, 64, "lanczos") == 1


def test_a_box_factor_jpeg_decodes_at_half_scale_within_a_bound_of_the_full_box(tmp_path):
    # 512x384 -> 64: crop 384, factor 6 = DCT scale 1/2, then reduce(3). Measured on the bench's 1,000 JPEGs:
    # max abs 12, mean abs 0.36, PSNR 51.9 dB against a full-size decode and a box filter (docs/packing.md).
    Image.fromarray(_photo(384, 512)).save(tmp_path / "p.jpg", quality=90)
    with Image.open(tmp_path / "p.jpg") as opened:
        image, scale = _load(opened, draft_scale(384, 64, "box"))
    assert scale == 2 and image.size == (256, 192)
    got, grey, name = decode(tmp_path / "p.jpg", 64, 3)
    assert name == "box" and not grey and got.shape == (64, 64, 3)
    reference = _full(tmp_path / "p.jpg", 64, Image.Resampling.BOX)
    diff = np.abs(got.astype(int) - reference)
    assert diff.max() <= 16 and diff.mean() < 0.6 and _psnr(got, reference) > 48


def test_a_lanczos_jpeg_decodes_at_a_reduced_scale_within_a_bound_of_the_full_lanczos(tmp_path):
    # 500x375 -> 64: not a whole factor; DCT scale 1/2 (188 px, 2 x 64 kept), then Lanczos. Measured: max abs 9,
    # PSNR 53.1 dB against a full-size decode and Lanczos.
    Image.fromarray(_photo(375, 500, seed=1)).save(tmp_path / "p.jpg", quality=90)
    got, _, name = decode(tmp_path / "p.jpg", 64, 3)
    reference = _full(tmp_path / "p.jpg", 64, Image.Resampling.LANCZOS)
    assert name == "lanczos" and np.abs(got.astype(int) - reference).max() <= 16 and _psnr(got, reference) > 48


def test_a_large_png_is_reduced_by_a_whole_factor_before_lanczos_within_a_bound(tmp_path):
    # 640x480 -> 64: reduce(3) (480 -> 160, 2 x 64 kept), then Lanczos 160 -> 64. Measured on 1000x750 photos: max
    # abs 3, PSNR 50.4 dB against Lanczos from the full image.
    Image.fromarray(_photo(480, 640, seed=2)).save(tmp_path / "p.png")
    got, _, name = decode(tmp_path / "p.png", 64, 3)
    reference = _full(tmp_path / "p.png", 64, Image.Resampling.LANCZOS)
    assert name == "lanczos" and not np.array_equal(got, reference)  # reduced first: not the same pixels
    assert np.abs(got.astype(int) - reference).max() <= 6 and _psnr(got, reference) > 45


def test_a_whole_factor_png_is_the_exact_block_mean(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, (48, 60, 3), dtype=np.uint8)
    Image.fromarray(array).save(tmp_path / "p.png")
    got, _, name = decode(tmp_path / "p.png", 8, 3)  # crop 48x48 at left 6, factor 6
    exact = array[:, 6:54].reshape(8, 6, 8, 6, 3).mean(axis=(1, 3))
    assert name == "box" and np.abs(got - exact).max() <= 0.5 + 1e-9  # reduce(): the mean, rounded


def test_the_probe_reads_headers_and_stops_decoding_at_the_first_colour_image(tmp_path, monkeypatch):
    import ganforge.data.pack as pack_module

    Image.fromarray(_photo(40, 50)).save(tmp_path / "a.png")  # colour, first in sorted order
    for k in range(5):
        Image.new("L", (40, 40), 20 * k).save(tmp_path / f"g{k}.png")
    decoded = []
    monkeypatch.setattr(pack_module, "decode", lambda *a, **k: decoded.append(a) or decode(*a, **k))
    assert probe_shape(open_source(f"folder:{tmp_path}"), 16) == (3, 40)
    assert len(decoded) == 1 and decoded[0][1:] == (16, 3)  # decoded as the pack will: at 16 px
    (tmp_path / "a.png").unlink()
    decoded.clear()
    assert probe_shape(open_source(f"folder:{tmp_path}")) == (1, 40) and len(decoded) == 5


def test_a_listing_pauses_the_cycle_collector_and_restores_it(tmp_path):
    Image.new("L", (8, 8)).save(tmp_path / "a.png")
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled() and list_folder(tmp_path).names == ["a.png"] and gc.isenabled()
    gc.disable()
    try:
        list_folder(tmp_path)
        assert not gc.isenabled()  # left as the caller had it
    finally:
        gc.enable()


@pytest.mark.parametrize("shard_bytes", [8 * 8 * 7, 1 << 30])
def test_packed_take_matches_a_tensor_gather_for_every_index_kind(tmp_path, monkeypatch, shard_bytes):
    import ganforge.data.writers as writers

    monkeypatch.setattr(writers, "SHARD_BYTES", shard_bytes)
    for k in range(20):
        Image.fromarray(np.random.default_rng(k).integers(0, 256, (8, 8), dtype=np.uint8)).save(tmp_path / f"{k}.png")
    pack(f"folder:{tmp_path}", tmp_path / "p", workers=1)
    images = open_packed(tmp_path / "p").images
    assert len(images.shards) == (3 if shard_bytes < 1000 else 1)
    whole = images.to_tensor()
    assert whole.shape == (20, 1, 8, 8) and whole.is_contiguous()
    index = [19, 0, 7, 7, -1, -20, 13]  # across shards, unordered, repeated, negative
    expected = whole[torch.tensor(index)]
    for kind in (index, np.array(index), torch.tensor(index)):
        got = images.take(kind)
        assert torch.equal(got, expected) and got.dtype == torch.uint8
    assert torch.equal(images[3], whole[3]) and torch.equal(images[2:9:3], whole[2:9:3])
    got = images.take(torch.tensor([1, 2]))
    got += 1  # the batch is a copy: writing it leaves the map alone
    assert torch.equal(images.take(torch.tensor([1, 2])), whole[1:3])
    for bad in ([20], [-21]):
        with pytest.raises(IndexError, match="out of range for 20 images"):
            images.take(bad)
    assert images.take([]).shape == (0, 1, 8, 8)
