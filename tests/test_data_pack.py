"""ganforge data pack: packed datasets and stylegan2-ada zips, read back, memory-mapped, cached, refused when bad."""

from __future__ import annotations

import json
import logging
import os
import zipfile

import numpy as np
import pytest
import torch
from PIL import Image
from test_data_folder import _save

from ganforge.batches import Batches
from ganforge.cli import main
from ganforge.data import load_dataset
from ganforge.data import pack as pack_module
from ganforge.data.pack import pack
from ganforge.data.packed import ShardedImages, open_packed
from ganforge.decoding import open_image
from ganforge.errors import DataError


@pytest.fixture
def photos(tmp_path):
    """Two classes of every kind of file: JPEG, PNG, WebP, grey, RGBA, palette, 16-bit, odd sizes, one broken."""
    root = tmp_path / "photos"
    _save(root / "cat" / "a.jpg", "RGB", (48, 36), 100)  # 4:3, non-integer factor to 16
    _save(root / "cat" / "b.png", "L", (17, 31), 10)  # odd sizes, tall
    _save(root / "cat" / "c.webp", "RGB", (64, 64), 200)
    _save(root / "dog" / "d.png", "RGBA", (40, 10), 128)  # very wide; alpha 128 over white: 191
    _save(root / "dog" / "e.gif", "P", (33, 33), 60)
    _save(root / "dog" / "f.png", "I;16", (16, 16), 90)  # 16-bit grey: 90 * 257 -> 90
    (root / "dog" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return root


def test_pack_a_folder_of_every_kind(photos, tmp_path):
    result = pack(f"folder:{photos}", tmp_path / "p", image_size=16, workers=1)
    assert (result.count, result.shape, result.total) == (6, (3, 16, 16), 7)
    assert len(result.skipped) == 1 and "broken.png" in result.skipped[0] and "skipped 1 unreadable" in result.summary()
    found = open_packed(tmp_path / "p")
    assert isinstance(found.images, ShardedImages) and isinstance(found.images.shards[0], np.memmap)
    assert found.labels.tolist() == [0, 0, 0, 1, 1, 1] and found.meta["class_names"] == ["cat", "dog"]
    images = found.images[:]
    assert images.shape == (6, 3, 16, 16) and images.dtype == torch.uint8
    means = [int(image.float().mean().round()) for image in images]
    # a.jpg 100 (JPEG: within 2), b.png 10, c.webp 200 (lossy: within 2), d.png 191, f.png 90
    assert abs(means[0] - 100) <= 2 and means[1] == 10 and abs(means[2] - 200) <= 2
    assert means[3] == 191 and means[5] == 90
    meta = json.loads((tmp_path / "p" / "dataset.json").read_text())
    assert meta["shape"] == [3, 16, 16] and meta["count"] == 6 and meta["digest"].startswith("sha256:")
    assert meta["source"] == f"folder:{photos}" and meta["resize_filter"] in ("box+lanczos", "lanczos")


def test_workers_pack_the_same_bytes_as_one_process(photos, tmp_path):
    one = pack(f"folder:{photos}", tmp_path / "one", image_size=16, workers=1)
    two = pack(f"folder:{photos}", tmp_path / "two", image_size=16, workers=2)
    assert one.digest == two.digest and one.skipped == two.skipped


def test_grey_folders_pack_to_one_channel_and_colour_to_three(tmp_path):
    for k in range(3):
        _save(tmp_path / "grey" / f"{k}.png", "L", (20, 20), 30 * k)
    _save(tmp_path / "grey" / "stored_rgb.jpg", "RGB", (20, 20), 77)  # grey pixels stored as RGB
    assert pack(f"folder:{tmp_path / 'grey'}", tmp_path / "g", image_size=8, workers=1).shape == (1, 8, 8)
    _save(tmp_path / "grey" / "z_colour.png", "RGB", (20, 20), 5)  # sorted after the probe's files
    Image.new("RGB", (20, 20), (255, 0, 0)).save(tmp_path / "grey" / "z_colour.png")
    assert pack(f"folder:{tmp_path / 'grey'}", tmp_path / "c", image_size=8, workers=1).shape == (3, 8, 8)
    assert pack(f"folder:{tmp_path / 'grey'}", tmp_path / "c1", image_size=8, channels=1).shape == (1, 8, 8)


def test_auto_filter_is_box_for_whole_factors_and_lanczos_otherwise(tmp_path):
    blocks = np.kron(np.arange(16, dtype=np.uint8).reshape(4, 4) * 16, np.ones((4, 4), dtype=np.uint8))
    noise = np.random.default_rng(0).integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(blocks + noise % 4).save(tmp_path / "x16.png")  # 16 -> 4: factor 4
    result = pack(f"folder:{tmp_path}", tmp_path / "p", image_size=4, workers=1)
    assert result.resized == {"box": 1} and "box" in result.summary()
    expected = (blocks + noise % 4).reshape(4, 4, 4, 4).mean(axis=(1, 3))  # box: each pixel a block's mean
    got = open_packed(tmp_path / "p").images[0][0].numpy()
    assert np.abs(got - expected).max() <= 1  # Pillow works in fixed point: within 1 of the exact mean
    lanczos = pack(f"folder:{tmp_path}", tmp_path / "q", image_size=5, workers=1)
    assert lanczos.resized == {"lanczos": 1}
    assert json.loads((tmp_path / "q" / "dataset.json").read_text())["resize_filter"] == "lanczos"
    bicubic = pack(f"folder:{tmp_path}", tmp_path / "r", image_size=4, resize_filter="bicubic", workers=1)
    assert bicubic.resized == {"bicubic": 1}


def test_jpeg_draft_mode_decodes_at_a_reduced_size_close_to_the_full_decode(tmp_path):
    y, x = np.mgrid[0:768, 0:1024]
    smooth = np.stack([x % 256, y % 256, (x + y) % 256], axis=-1).astype(np.uint8)
    Image.fromarray(smooth).save(tmp_path / "big.jpg", quality=95)
    drafted = open_image(tmp_path / "big.jpg", draft_side=64)
    assert drafted.size == (256, 192)  # 1/4 scale: the short side stays >= 2 x 64
    assert open_image(tmp_path / "big.jpg").size == (1024, 768)
    full = open_image(tmp_path / "big.jpg").resize((64, 64), Image.Resampling.LANCZOS, box=(128, 0, 896, 768))
    fast = drafted.resize((64, 64), Image.Resampling.LANCZOS, box=(32, 0, 224, 192))
    assert np.abs(np.asarray(full, dtype=float) - np.asarray(fast, dtype=float)).mean() < 3


def test_zip_round_trip_in_stylegan2_ada_layout(photos, tmp_path):
    made = pack(f"folder:{photos}", tmp_path / "set.zip", image_size=16, workers=1)
    assert made.count == 6
    with zipfile.ZipFile(tmp_path / "set.zip") as archive:
        names = archive.namelist()
        meta = json.loads(archive.read("dataset.json"))
        first = Image.open(archive.open("00000/img00000000.png"))
        assert first.format == "PNG" and first.mode == "RGB" and first.size == (16, 16)
    assert names[:6] == [f"00000/img{k:08d}.png" for k in range(6)]
    assert meta["labels"] == [[f"00000/img{k:08d}.png", k // 3] for k in range(6)]
    # read back through zip: the same pixels as packing the folder directly (PNG is lossless)
    pack(f"zip:{tmp_path / 'set.zip'}", tmp_path / "from_zip", workers=1)
    pack(f"folder:{photos}", tmp_path / "direct", image_size=16, workers=1)
    a, b = open_packed(tmp_path / "from_zip"), open_packed(tmp_path / "direct")
    assert torch.equal(a.images[:], b.images[:]) and torch.equal(a.labels, b.labels)
    assert a.meta["class_names"] == ["cat", "dog"]
    ds = load_dataset(f"zip:{tmp_path / 'set.zip'}", image_size=16)
    assert torch.equal(ds.images[:], b.images[:]) and ds.num_classes == 2


def test_zips_made_elsewhere_are_read_with_or_without_labels(tmp_path):
    def write(path, labels):
        with zipfile.ZipFile(path, "w") as archive:
            for k in range(1500):  # two folders: 00000/ holds 1,000, 00001/ the rest
                name = f"{k:08d}"
                image = Image.new("L", (8, 8), k % 256)
                buffer = __import__("io").BytesIO()
                image.save(buffer, format="png")
                archive.writestr(f"{name[:5]}/img{name}.png", buffer.getvalue())
            archive.writestr("dataset.json", json.dumps({"labels": labels}))

    write(tmp_path / "plain.zip", None)
    ds = load_dataset(f"zip:{tmp_path / 'plain.zip'}", image_size=8)
    assert (len(ds), ds.labels, tuple(ds.images.shape[1:])) == (1500, None, (1, 8, 8))
    assert int(ds.images[1234][0, 0, 0]) == 1234 % 256
    write(tmp_path / "labeled.zip", [[f"{k // 1000:05d}/img{k:08d}.png", k % 3] for k in range(1500)])
    labeled = load_dataset(f"zip:{tmp_path / 'labeled.zip'}", image_size=8)
    assert labeled.labels.tolist() == [k % 3 for k in range(1500)] and labeled.num_classes == 3


def test_pack_an_in_memory_spec(tmp_path):
    result = pack("mnist-sample", tmp_path / "digits", image_size=32, workers=1)
    assert (result.count, result.shape) == (5000, (1, 32, 32)) and result.resized == {"lanczos": 5000}
    ds = load_dataset(f"packed:{tmp_path / 'digits'}")
    assert ds.num_classes == 10 and ds.class_names == tuple("0123456789") and ds.resize_filter == "lanczos"
    assert ds.is_mapped and load_dataset(str(tmp_path / "digits")).is_mapped  # the path alone works too


def _tiny_pack(tmp_path, n=40, size=8, classes=4):
    """n random grey images in `classes` subfolders of tmp_path/src, packed at their size into tmp_path/p."""
    rng = np.random.default_rng(0)
    for k in range(n):
        folder = tmp_path / "src" / f"c{k % classes}"
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (size, size), dtype=np.uint8)).save(folder / f"{k:03d}.png")
    pack(f"folder:{tmp_path / 'src'}", tmp_path / "p", image_size=size, workers=1)
    return tmp_path / "p"


@pytest.mark.parametrize("streamed", [True, False])
def test_batches_from_the_map_equal_batches_in_memory_and_split_by_rank(tmp_path, monkeypatch, streamed):
    import ganforge.batches

    if streamed:  # read batch by batch from the map, as a set larger than _LOAD_MAPPED_BYTES is
        monkeypatch.setattr(ganforge.batches, "_LOAD_MAPPED_BYTES", 0)
    mapped = load_dataset(f"packed:{_tiny_pack(tmp_path)}")
    assert mapped.is_mapped and not isinstance(mapped.images, torch.Tensor)
    in_memory = load_dataset(f"packed:{tmp_path / 'p'}")
    in_memory.images = in_memory.in_memory()
    cpu = torch.device("cpu")
    a = Batches(mapped, 8, seed=3, device=cpu)
    b = Batches(in_memory, 8, seed=3, device=cpu)
    halves = [Batches(mapped, 8, seed=3, device=cpu, shard=(r, 2)) for r in range(2)]
    assert (a.dataset is not None, a.images is None) == (streamed, streamed)  # a small set is read whole otherwise
    for _ in range(12):  # past an epoch (40 images, 5 batches)
        (x, y), (x2, y2) = a.next(), b.next()
        parts = [h.next() for h in halves]
        assert torch.equal(x, x2) and torch.equal(y, y2)
        assert torch.equal(torch.cat([p[0] for p in parts]), x) and torch.equal(torch.cat([p[1] for p in parts]), y)


def test_training_from_a_pack_resumes_bit_exactly(tmp_path, monkeypatch):
    import dataclasses

    import ganforge.batches

    monkeypatch.setattr(ganforge.batches, "_LOAD_MAPPED_BYTES", 0)  # streamed from the map, as a large set is

    from ganforge.config import ModelConfig, TrainConfig
    from ganforge.train import train

    _tiny_pack(tmp_path)
    model = ModelConfig(arch="dcgan", image_size=32, channels=1, z_dim=8, width=4)
    pack(f"folder:{tmp_path / 'src'}", tmp_path / "p32", image_size=32, workers=1)
    cfg = TrainConfig(model=model, data=f"packed:{tmp_path / 'p32'}", steps=6, batch_size=8, log_every=1,
                      checkpoint_every=3, sample_every=0, check_every=0, device="cpu", precision="fp32",
                      out_dir=str(tmp_path / "full"))  # fmt: skip
    train(cfg)
    train(dataclasses.replace(cfg, steps=3, out_dir=str(tmp_path / "split")))
    train(dataclasses.replace(cfg, out_dir=str(tmp_path / "split")), resume=True)
    from ganforge import checkpoint

    full = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "full"))
    split = checkpoint.load_checkpoint(checkpoint.latest_checkpoint(tmp_path / "split"))
    for net in ("G", "D"):
        for key, value in full[net].items():
            assert torch.equal(value, split[net][key]), (net, key)


def test_a_folder_packs_itself_into_the_cache_once_and_again_when_changed(tmp_path, caplog, _offline_home, monkeypatch):
    for k in range(5):
        _save(tmp_path / "f" / f"{k}.png", "RGB", (12, 12), 40 * k)
    with caplog.at_level(logging.INFO):
        first = load_dataset(f"folder:{tmp_path / 'f'}", image_size=8)
    assert any("packed 5 images into the cache" in r.getMessage() for r in caplog.records)
    assert first.is_mapped and len(first) == 5
    packs = list((_offline_home / "packed").iterdir())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        again = load_dataset(f"folder:{tmp_path / 'f'}", image_size=8)
    assert not any("into the cache" in r.getMessage() for r in caplog.records)
    assert list((_offline_home / "packed").iterdir()) == packs and torch.equal(again.images[:], first.images[:])
    _save(tmp_path / "f" / "5.png", "RGB", (12, 12), 250)  # a new file: repacked, the old pack removed
    changed = load_dataset(f"folder:{tmp_path / 'f'}", image_size=8)
    assert len(changed) == 6 and len(list((_offline_home / "packed").iterdir())) == 1
    os.utime(tmp_path / "f" / "0.png", ns=(1, 1))  # a new time alone: repacked too
    with caplog.at_level(logging.INFO):
        load_dataset(f"folder:{tmp_path / 'f'}", image_size=8)
    assert any("into the cache" in r.getMessage() for r in caplog.records)
    load_dataset(f"folder:{tmp_path / 'f'}", image_size=16)  # another transform: its own pack beside
    assert len(list((_offline_home / "packed").iterdir())) == 2
    monkeypatch.setattr(pack_module, "DECODER", -1)  # a decoder that changes pixels: a pack of its own
    with caplog.at_level(logging.INFO):
        load_dataset(f"folder:{tmp_path / 'f'}", image_size=16)
    assert len(list((_offline_home / "packed").iterdir())) == 3


def test_the_reference_in_eval_json_names_the_resize_filter(tmp_path):
    from ganforge.metrics.reference import load_reference

    _tiny_pack(tmp_path, n=12, size=12)
    pack(f"folder:{tmp_path / 'src'}", tmp_path / "p8", image_size=8, workers=1)
    ref = load_reference(f"packed:{tmp_path / 'p8'}", image_size=28, channels=1)
    assert ref.describe() == {"name": "packed", "split": "all", "count": 12, "resize_filter": "lanczos"}
    assert ref.images.shape == (12, 1, 28, 28)


# -- bad input: one line, exit 2, nothing written --------------------------------------------------


def _run_refused(argv, capsys, needle):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("ganforge: error:") and needle in err[0], err


def test_a_truncated_pack_is_refused(tmp_path, capsys):
    root = _tiny_pack(tmp_path)
    shard = root / "images-00000.npy"
    shard.write_bytes(shard.read_bytes()[:-100])
    _run_refused(["data", "pack", f"packed:{root}", "--out", str(tmp_path / "new")], capsys, "truncated")
    _run_refused(["train", "--data", f"packed:{root}", "--out", str(tmp_path / "run"), "--steps", "1"], capsys,
                 "truncated")  # fmt: skip
    assert not (tmp_path / "new").exists() and not (tmp_path / "run").exists()


def test_a_pack_whose_content_does_not_match_its_digest_is_refused(tmp_path, capsys):
    root = _tiny_pack(tmp_path)
    load_dataset(f"packed:{root}")  # verified once: a stamp in the cache
    shard = root / "images-00000.npy"
    data = bytearray(shard.read_bytes())
    data[-1] ^= 0xFF  # same size; the time changes, so the stamp no longer vouches for it
    shard.write_bytes(bytes(data))
    _run_refused(["data", "pack", f"packed:{root}", "--out", str(tmp_path / "new")], capsys, "hashes to")
    data[-1] ^= 0xFF
    shard.write_bytes(bytes(data))
    load_dataset(f"packed:{root}")
    meta = json.loads((root / "dataset.json").read_text())
    meta["digest"] = "sha256:" + "0" * 64
    (root / "dataset.json").write_text(json.dumps(meta))
    _run_refused(["data", "pack", f"packed:{root}", "--out", str(tmp_path / "new")], capsys, "dataset.json says")
    assert not (tmp_path / "new").exists()


def test_a_zip_without_images_is_refused(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "empty.zip", "w") as archive:
        archive.writestr("readme.txt", "no images here")
        archive.writestr("dataset.json", json.dumps({"labels": None}))
    _run_refused(["data", "pack", f"zip:{tmp_path / 'empty.zip'}", "--out", str(tmp_path / "new")], capsys,
                 "no images in zip")  # fmt: skip
    assert not (tmp_path / "new").exists()
    with pytest.raises(DataError, match="no images in zip"):
        load_dataset(f"zip:{tmp_path / 'empty.zip'}")


def test_labels_that_do_not_match_the_images_are_refused(tmp_path, capsys):
    with zipfile.ZipFile(tmp_path / "bad.zip", "w") as archive:
        for k in range(3):
            buffer = __import__("io").BytesIO()
            Image.new("L", (8, 8), k).save(buffer, format="png")
            archive.writestr(f"00000/img{k:08d}.png", buffer.getvalue())
        archive.writestr("dataset.json", json.dumps({"labels": [["00000/img00000000.png", 0]]}))
    _run_refused(["data", "pack", f"zip:{tmp_path / 'bad.zip'}", "--out", str(tmp_path / "new.zip")], capsys,
                 "1 labels for 3 images")  # fmt: skip
    assert not list(tmp_path.glob("new*")) and not list(tmp_path.glob(".new*"))
    root = _tiny_pack(tmp_path)
    meta = json.loads((root / "dataset.json").read_text())
    meta["count"] += 1  # dataset.json promises more images and labels than the files hold
    (root / "dataset.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match="dataset.json says"):
        load_dataset(f"packed:{root}")


def test_an_existing_out_folder_is_not_overwritten(tmp_path, capsys):
    root = _tiny_pack(tmp_path)
    _run_refused(["data", "pack", f"packed:{root}", "--out", str(root)], capsys, "already exists")
    assert open_packed(root).images.shape[0] == 40


def test_a_pack_of_several_shards_reads_as_one(tmp_path, monkeypatch):
    import ganforge.data.writers as pack_module

    monkeypatch.setattr(pack_module, "SHARD_BYTES", 8 * 8 * 7)  # 7 grey 8x8 images a shard
    root = _tiny_pack(tmp_path)  # 40 images: shards of 7, ..., 5
    found = open_packed(root)
    assert [s["count"] for s in found.meta["shards"]] == [7] * 5 + [5] and len(found.images.shards) == 6
    pack_module.SHARD_BYTES = 1 << 30
    whole = pack(f"folder:{tmp_path / 'src'}", tmp_path / "one", image_size=8, workers=1)
    one = open_packed(tmp_path / "one")
    assert len(one.images.shards) == 1 and whole.digest == found.digest  # the digest covers content, not layout
    index = torch.tensor([39, 0, 13, 7, 6, 13])  # across shards, unordered, repeated
    assert torch.equal(found.images.index_select(0, index), one.images[:][index])
    assert torch.equal(torch.stack(list(found.images)), one.images[:])


def test_the_cli_packs_and_prints_one_summary_line_and_the_train_command(photos, tmp_path, capsys):
    out = tmp_path / "cli.pack"
    argv = ["data", "pack", f"folder:{photos}", "--out", str(out), "--image-size", "8", "--resize-filter", "box"]
    assert main([*argv, "--workers", "1"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith("packed 6 images (8x8 RGB)") and "resize filter box" in lines[0]
    assert "skipped 1 unreadable of 7 image files: broken.png" in lines[0]
    assert lines[1] == f"train on it: ganforge train --data packed:{out} --image-size 8"
    assert json.loads((out / "dataset.json").read_text())["resize_policy"] == "box"


def _rss_mb(kind="VmRSS"):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(kind + ":")) / 1024


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="reads VmRSS from /proc")
def test_opening_and_reading_a_pack_does_not_load_it(tmp_path, monkeypatch):
    import ganforge.data.packed as packed_module
    from ganforge.data.writers import ShardWriter

    monkeypatch.setattr(packed_module, "DROP_EVERY_BYTES", 8 << 20)  # as if the 48 MiB set were 1,000x larger

    writer = ShardWriter(tmp_path / "big", (3, 128, 128))
    rng = np.random.default_rng(0)
    for _ in range(8):  # 8 x 128 images of 48 KiB: 48 MiB
        writer.add_batch(rng.integers(0, 256, (128, 128, 128, 3), dtype=np.uint8))
    writer.finish(None, {"count": 1024, "shape": [3, 128, 128], "num_classes": 0, "class_names": []})
    before, before_file = _rss_mb(), _rss_mb("RssFile")
    ds = load_dataset(f"packed:{tmp_path / 'big'}")  # maps, and hashes the files block by block
    batches = Batches(ds, 16, seed=0, device=torch.device("cpu"))
    for _ in range(64):  # every image, each once
        real, _ = batches.next()
    assert real.shape == (16, 3, 128, 128) and ds.is_mapped and isinstance(ds.images.shards[0], np.memmap)
    # the 48 MiB set is not held by this process: its file pages come and go, and all else grew by less than it
    assert _rss_mb("RssFile") - before_file < 8 and _rss_mb() - before < 40
