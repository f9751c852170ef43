"""`ganforge detect`: files and folders, the watermark (a stand-in module here) and the detector, JSON, bad files."""

import hashlib
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from ganforge import detect, detector
from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.models import build_generator

MARK = 7  # the stand-in watermark "finds" a mark when the top-left pixel holds this value


@dataclass(frozen=True)
class Reading:
    found: bool
    bit_accuracy: float
    payload: str
    p_value: float
    n_bits: int


@pytest.fixture
def watermark(monkeypatch, tmp_path):
    """A stand-in for ganforge.watermark with its interface: the tests here are about detect, not the mark."""
    module = types.ModuleType("ganforge.watermark")
    module.Reading = Reading
    module.calls = []
    module.marked_payload = "00000000"
    key_file = tmp_path / "key"
    key_file.write_bytes(b"k" * 32)

    def existing_key(key_file_arg=None):
        module.calls.append(("existing_key", key_file_arg))
        return b"k" * 32, Path(key_file_arg) if key_file_arg else key_file

    def payload_bits(sha256, n_bits):
        digest = hashlib.sha256(bytes.fromhex(sha256)).digest()
        return np.unpackbits(np.frombuffer(digest, dtype=np.uint8))[:n_bits]

    def decode(pixels, key):
        assert pixels.dtype == np.uint8 and pixels.ndim in (2, 3) and key == b"k" * 32
        module.calls.append(("decode", pixels.shape))
        found = int(pixels.reshape(pixels.shape[0], pixels.shape[1], -1)[0, 0, 0]) == MARK
        return Reading(
            found, 1.0 if found else 0.5, module.marked_payload if found else "", 1e-12 if found else 0.5, 32
        )

    module.existing_key, module.payload_bits, module.decode = existing_key, payload_bits, decode
    module.capacity = lambda height, width: 32
    monkeypatch.setitem(sys.modules, "ganforge.watermark", module)
    return module


@pytest.fixture
def det_file(tmp_path):
    """A tiny detector (random weights) whose threshold sits between two known scores: fast and deterministic."""
    torch.manual_seed(0)
    net = detector.DetectorNet(width=4).eval()
    path = tmp_path / "det.safetensors"
    detector.save_detector(path, net, threshold=0.5, protocol={"note": "test"})
    return path


def digit(value=0):
    pixels = np.zeros((28, 28), dtype=np.uint8)
    pixels[6:22, 12:16] = 255
    pixels[0, 0] = value
    return pixels


@pytest.fixture
def images(tmp_path):
    folder = tmp_path / "imgs"
    (folder / "sub").mkdir(parents=True)
    Image.fromarray(digit(MARK)).save(folder / "marked.png")
    Image.fromarray(digit(0)).save(folder / "plain.png")
    colour = np.asarray(Image.fromarray(np.stack([digit(0)] * 3, axis=-1)).resize((64, 64))).copy()
    colour[0, 0] = MARK
    Image.fromarray(colour).save(folder / "sub" / "colour.webp", lossless=True)
    Image.fromarray(digit(0)).save(folder / "sub" / "resaved.jpg", quality=75)
    (folder / "notes.txt").write_text("not an image, and not picked up from a folder")
    (folder / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)  # a PNG signature, nothing after
    png = (folder / "plain.png").read_bytes()
    (folder / "sub" / "truncated.png").write_bytes(png[: len(png) // 2])
    return folder


def test_detect_reads_every_image_and_lists_the_unreadable(images, det_file, watermark, tmp_path, capsys):
    out = tmp_path / "result.json"
    code = main(["detect", str(images), str(tmp_path / "missing.png"), "--detector", str(det_file), "--json", str(out)])
    assert code == 0
    text = capsys.readouterr().out
    records = json.loads(out.read_text())
    by_name = {Path(r["path"]).name: r for r in records}
    assert set(by_name) == {"marked.png", "plain.png", "colour.webp", "resaved.jpg", "broken.png", "truncated.png",
                            "missing.png"}  # fmt: skip
    good = [r for r in records if "error" not in r]
    assert len(good) == 4
    for r in good:
        assert 0 <= r["detector"]["score"] <= 1
        assert r["detector"]["generated"] == (r["detector"]["score"] > 0.5)
        assert set(r["watermark"]) >= {"found", "bit_accuracy", "payload", "p_value", "n_bits"}
    assert by_name["marked.png"]["watermark"]["found"] is True
    assert by_name["plain.png"]["watermark"]["found"] is False
    assert by_name["colour.webp"]["size"] == [64, 64] and by_name["colour.webp"]["watermark"]["found"] is True
    assert ("decode", (64, 64, 3)) in watermark.calls  # colour reaches the mark as (H, W, 3) ...
    assert ("decode", (28, 28)) in watermark.calls  # ... grey as (H, W)
    for name in ("broken.png", "truncated.png", "missing.png"):
        assert by_name[name]["error"] and by_name[name]["detector"] is None
        assert f"{name}" in text and "unreadable" in text
    summary = text.strip().splitlines()[-3]
    assert summary.startswith("4 images: 2 with the watermark;") and summary.endswith("3 unreadable")
    assert "Traceback" not in text


def test_the_table_has_one_row_per_image(images, det_file, watermark, capsys):
    assert main(["detect", str(images / "plain.png"), str(images / "marked.png"), "--detector", str(det_file)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].split()[:3] == ["path", "size", "mark"]
    assert [line.split()[2] for line in lines[1:3]] == ["no", "yes"]
    assert lines[3].startswith("2 images:")


def test_scores_equal_the_library_call(images, det_file, watermark):
    files = [images / "plain.png", images / "sub" / "resaved.jpg"]
    report = detect.detect(files, detector=detector.load_detector(det_file))
    direct = detector.load_detector(det_file).score(
        [np.asarray(Image.open(images / "plain.png")), np.asarray(Image.open(images / "sub" / "resaved.jpg"))]
    )
    np.testing.assert_allclose([r.score for r in report.records], direct)
    assert all(r.watermark is None for r in report.records)  # no key given to the library: no mark check
    assert "watermark not checked" in detect.format_table(report)
    keyed = detect.detect(files, key=b"k" * 32, detector=detector.load_detector(det_file))
    assert all(r.watermark is not None for r in keyed.records)
    assert detect.format_table(keyed).splitlines()[-1].startswith("2 images: 0 with the watermark;")


def test_generators_name_the_file_whose_payload_was_found(images, det_file, watermark, tmp_path):
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=16)
    files = []
    for seed in (0, 1):
        torch.manual_seed(seed)
        files.append(tmp_path / f"g{seed}" / "generator.safetensors")
        save_generator(files[-1], build_generator(cfg), cfg, {"seed": seed})
    sha = hashlib.sha256(files[1].read_bytes()).hexdigest()
    watermark.marked_payload = detect.bits_hex(watermark.payload_bits(sha, 32))
    out = tmp_path / "r.json"
    args = ["detect", str(images / "marked.png"), str(images / "plain.png"), "--detector", str(det_file),
            "--generators", str(files[0]), str(files[1].parent), "--json", str(out)]  # fmt: skip
    assert main(args) == 0
    marked, plain = json.loads(out.read_text())
    assert marked["generator"] == str(files[1].parent) and marked["watermark"]["payload"] == watermark.marked_payload
    assert plain["generator"] is None


def test_key_file_is_passed_on_and_no_watermark_skips_it(images, det_file, watermark, tmp_path, capsys):
    key = tmp_path / "my.key"
    assert main(["detect", str(images / "plain.png"), "--detector", str(det_file), "--key-file", str(key)]) == 0
    assert ("existing_key", str(key)) in watermark.calls
    assert f"watermark key: {key}" in capsys.readouterr().out
    watermark.calls.clear()
    out = tmp_path / "r.json"
    assert (
        main(["detect", str(images / "plain.png"), "--detector", str(det_file), "--no-watermark", "--json", str(out)])
        == 0
    )
    assert watermark.calls == []
    (record,) = json.loads(out.read_text())
    assert record["watermark"]["checked"] is False and record["watermark"]["found"] is None
    assert "watermark not checked" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--no-watermark", "--key-file", "k"], "--no-watermark skips the mark"),
        (["--json", "{tmp}"], "is a folder"),
        (["--generators", "{tmp}/none.safetensors"], "does not exist"),
        (["--detector", "{tmp}/none.safetensors"], "does not exist"),
    ],
)
def test_bad_options_fail_in_one_line(images, watermark, tmp_path, capsys, args, needle):
    code = main(["detect", str(images), *[a.format(tmp=tmp_path) for a in args]])
    err = capsys.readouterr().err
    assert code == 2 and needle in err and err.count("\n") == 1


def test_the_shipped_detector_is_the_default(images, watermark, capsys):
    assert main(["detect", str(images / "plain.png"), "--no-watermark"]) == 0
    shipped = detector.load_detector()
    assert f"threshold {shipped.threshold:.3f}" in capsys.readouterr().out


def test_detect_finds_the_real_watermark_that_sample_wrote(tmp_path, capsys):
    """The two halves together (the tests above stand a fake in for the watermark): sample marks, detect reads
    the mark with the key, names the generator by its payload, and finds nothing with another key."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=8, width=8)
    gen = tmp_path / "generator.safetensors"
    save_generator(gen, build_generator(cfg), cfg, {"preset": "test"})
    key, other = tmp_path / "k.key", tmp_path / "other.key"
    assert main(["key", "new", "--out", str(key)]) == 0 and main(["key", "new", "--out", str(other)]) == 0
    assert main(["sample", str(gen), "--n", "3", "--out", f"{tmp_path}/pics/", "--key-file", str(key)]) == 0
    out = tmp_path / "found.json"
    args = ["detect", str(tmp_path / "pics"), "--generators", str(gen), "--json", str(out)]
    assert main([*args, "--key-file", str(key)]) == 0
    rows = json.loads(out.read_text())
    assert len(rows) == 3 and all(r["watermark"]["found"] and r["generator"] == str(gen) for r in rows)
    assert main([*args, "--key-file", str(other)]) == 0
    assert not any(r["watermark"]["found"] for r in json.loads(out.read_text()))


def test_detect_never_makes_a_key(images, tmp_path, capsys, monkeypatch):
    """A key made by detect would find no mark: without one, detect says the watermark was not checked and writes
    nothing; the passive detector still scores every image."""
    from ganforge.watermark_keys import default_key_path

    monkeypatch.delenv("GANFORGE_KEY_FILE", raising=False)
    out = tmp_path / "r.json"
    assert main(["detect", str(images / "plain.png"), "--json", str(out)]) == 0
    assert "watermark not checked: no key" in capsys.readouterr().out
    assert not default_key_path().exists()
    (record,) = json.loads(out.read_text())
    assert record["watermark"]["checked"] is False and 0 <= record["detector"]["score"] <= 1
