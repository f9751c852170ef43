"""The watermark where ganforge writes images: sample (CLI and library), the server, the training grids."""

from __future__ import annotations

import dataclasses
import io

import numpy as np
import pytest
import torch
from fastapi.testclient import TestClient
from PIL import Image
from test_train import tiny_cfg, tiny_data

from ganforge import checkpoint
from ganforge import watermark as wm
from ganforge.checkpoint import load_generator, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.images import png_text
from ganforge.marking import FROM_GENERATOR, FROM_RUN
from ganforge.models import build_generator
from ganforge.serve.app import make_app
from ganforge.train import train


@pytest.fixture
def generator(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=6, width=16)
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test", "step": 3, "data": "mnist", "seed": 0})
    return path


def _pixels(path):
    with Image.open(path) as im:
        return np.asarray(im)


def test_sample_marks_by_default_with_the_per_user_key(generator, tmp_path, _offline_home, capsys):
    assert main(["sample", str(generator), "--out", str(tmp_path / "g.png")]) == 0
    key = wm.read_key(_offline_home / "watermark.key")  # made on first use
    sha = load_generator(generator).sha256
    text = png_text(tmp_path / "g.png")
    assert text["ganforge:watermark"] == "on" and text["ganforge:watermark_payload"] == sha[:8]
    assert text["ganforge:watermark_payload_from"] == FROM_GENERATOR
    assert key.hex() not in (tmp_path / "g.png").read_bytes().decode("latin-1")  # the key is never written out
    reading = wm.decode(_pixels(tmp_path / "g.png"), key)  # a 5x5 grid: the tiles are found
    assert reading.found and reading.payload == sha[:8]


def test_key_file_and_no_watermark(generator, tmp_path):
    key_file = tmp_path / "team.key"
    assert main(["key", "new", "--out", str(key_file)]) == 0
    assert main(["key", "new", "--out", str(key_file)]) == 2  # never overwritten
    out = tmp_path / "singles"
    assert main(["sample", str(generator), "--n", "2", "--out", f"{out}/", "--key-file", str(key_file)]) == 0
    single = out / "seed0_00000.png"
    assert wm.decode(_pixels(single), wm.read_key(key_file)).found
    assert not wm.decode(_pixels(single), wm.new_key()).found
    assert main(["sample", str(generator), "--n", "2", "--out", str(tmp_path / "off.png"), "--no-watermark"]) == 0
    text = png_text(tmp_path / "off.png")
    assert text["ganforge:watermark"] == "off" and "ganforge:watermark_payload" not in text
    plain = main(["sample", str(generator), "--n", "2", "--out", str(tmp_path / "on.png"), "--key-file", str(key_file)])
    assert plain == 0 and not np.array_equal(_pixels(tmp_path / "off.png"), _pixels(tmp_path / "on.png"))
    both = ["sample", str(generator), "--out", str(tmp_path / "x.png"), "--no-watermark", "--key-file", str(key_file)]
    assert main(both) == 2 and not (tmp_path / "x.png").exists()
    assert main(["sample", str(generator), "--out", str(tmp_path / "y.png"), "--key-file", str(tmp_path / "no")]) == 2


def test_server_marks_its_images_and_says_when_it_does_not(generator):
    G = load_generator(generator)
    key = wm.new_key()
    with TestClient(make_app(G, watermark=key)) as c:
        grid = c.post("/v1/generate", json={"n": 4, "seed": 3})
    with TestClient(make_app(G, watermark=False)) as c:
        off = c.post("/v1/generate", json={"n": 4, "seed": 3})
    marked, clean = _pixels(io.BytesIO(grid.content)), _pixels(io.BytesIO(off.content))
    assert wm.decode(marked, key).found and not wm.decode(clean, key).found
    with Image.open(io.BytesIO(grid.content)) as im:
        assert im.text["ganforge:watermark"] == "on" and im.text["ganforge:watermark_payload"] == G.sha256[:8]
    with Image.open(io.BytesIO(off.content)) as im:
        assert im.text["ganforge:watermark"] == "off"


def test_training_grids_are_marked_and_the_key_stays_out_of_the_run(tmp_path, _offline_home):
    run = tmp_path / "run"
    model = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=8, width=8)
    cfg = dataclasses.replace(tiny_cfg(run, steps=4, sample_every=2, log_every=2, check_every=0), model=model)
    train(cfg, dataset=tiny_data(n=64, size=28))
    key = wm.read_key(_offline_home / "watermark.key")
    step = png_text(run / "samples" / "step_0000002.png")
    assert step["ganforge:watermark"] == "on" and step["ganforge:watermark_payload_from"] == FROM_RUN
    final = png_text(run / "samples.png")
    sha = checkpoint.file_sha256(run / "generator.safetensors")
    assert final["ganforge:watermark_payload"] == sha[:8] and final["ganforge:watermark_payload_from"] == FROM_GENERATOR
    assert wm.decode(_pixels(run / "samples.png"), key).payload == sha[:8]
    assert wm.decode(_pixels(run / "samples" / "step_0000002.png"), key).found
    for path in run.rglob("*"):  # neither the key nor its hex is anywhere in the run directory
        if path.is_file():
            data = path.read_bytes()
            assert key not in data and key.hex().encode() not in data, path
    off = tmp_path / "off"
    train(dataclasses.replace(cfg, out_dir=str(off)), dataset=tiny_data(n=64, size=28), watermark=False)
    assert png_text(off / "samples.png")["ganforge:watermark"] == "off"
