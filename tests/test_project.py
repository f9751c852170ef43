"""Projection: it recovers G's own images, is seeded, and the CLI writes its files and reads them back."""

import json

import numpy as np
import pytest
import torch
from conftest import save_tiny_generator
from PIL import Image

from ganforge.checkpoint import load_generator, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.errors import ConfigError, DataError
from ganforge.models import build_generator
from ganforge.project import project, read_images
from ganforge.sample import generate, latents


def run(*args):
    try:
        return main([*map(str, args)])
    except SystemExit as e:
        return e.code


def _write_pngs(G, folder, z, labels=None):
    """G's own images for latents z, as PNG files; returns the paths."""
    pixels = ((generate(G, z, labels) + 1) * 127.5).round().clamp(0, 255).to(torch.uint8)
    paths = []
    for i, image in enumerate(pixels):
        path = folder / f"own{i}.png"
        Image.fromarray(image[0].numpy()).save(path)
        paths.append(path)
    return paths


def test_projection_recovers_gs_own_image_better_than_random_latents(plain):
    G = load_generator(plain)
    z_true = latents(3, G.cfg.z_dim, seed=99)
    targets = generate(G, z_true)
    result = project(G, targets, steps=120, starts=2, seed=0)
    assert result.z.shape == (3, G.cfg.z_dim) and result.labels is None and result.extractor is None
    # Any random latent is a worse explanation of G(z_true) than the one found (by construction: the search
    # starts from random latents and only moves to lower the distance).
    random_images = generate(G, latents(256, G.cfg.z_dim, seed=5))
    random_mse = (random_images[None] - targets[:, None]).pow(2).flatten(2).mean(2)  # (3, 256)
    assert (result.pixel_mse < random_mse.min(1).values).all()
    assert torch.allclose(result.pixel_mse, (result.images - targets).pow(2).flatten(1).mean(1), atol=1e-6)


def test_projection_is_seeded(plain):
    G = load_generator(plain)
    targets = generate(G, latents(2, G.cfg.z_dim, seed=1))
    a = project(G, targets, steps=20, starts=2, seed=3)
    b = project(G, targets, steps=20, starts=2, seed=3)
    c = project(G, targets, steps=20, starts=2, seed=4)
    assert torch.equal(a.z, b.z)
    assert not torch.equal(a.z, c.z)


def test_an_images_result_does_not_depend_on_the_others(plain):
    G = load_generator(plain)
    targets = generate(G, latents(3, G.cfg.z_dim, seed=1))
    alone = project(G, targets[:1], steps=12, starts=2, batch=1)
    among = project(G, targets, steps=12, starts=2, batch=1)  # its random starts are the first rows of one stream
    assert torch.equal(alone.z[0], among.z[0]) and among.z.shape == (3, G.cfg.z_dim)
    ticks = []
    project(G, targets, steps=12, starts=1, batch=2, on_step=lambda done, total: ticks.append((done, total)))
    assert ticks[-1] == (24, 24) and len(ticks) == 24


def test_conditional_projection_keeps_a_fixed_class_and_refuses_a_bad_one(conditional):
    G = load_generator(conditional)
    targets = generate(G, latents(2, G.cfg.z_dim, seed=1), torch.tensor([0, 2]))
    free = project(G, targets, steps=16, starts=1)
    assert free.labels is not None and set(free.labels.tolist()) <= {0, 1, 2}
    fixed = project(G, targets, steps=16, starts=1, label=1)
    assert fixed.labels.tolist() == [1, 1]
    with pytest.raises(ConfigError, match="0..2"):
        project(G, targets, steps=16, label=3)


def test_28x28_grey_models_use_the_shipped_extractor(tmp_path):
    G = load_generator(save_tiny_generator(tmp_path, num_classes=10, image_size=28, z_dim=8))
    targets = generate(G, latents(2, 8, seed=1), torch.tensor([3, 4]))
    result = project(G, targets, steps=8, starts=1)
    assert result.extractor == "mnist"
    assert result.feature_cosine is not None and result.feature_cosine.shape == (2,)
    assert ((result.feature_cosine > -1.001) & (result.feature_cosine < 1.001)).all()


def test_read_images_converts_to_the_models_shape_and_refuses_bad_files(tmp_path, monkeypatch):
    colour = tmp_path / "wide.jpg"
    Image.new("RGB", (40, 30), (200, 10, 10)).save(colour)
    x = read_images([colour], (1, 8, 8))
    assert x.shape == (1, 1, 8, 8) and float(x.min()) >= -1 and float(x.max()) <= 1
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DataError, match="broken.png"):
        read_images([broken], (1, 8, 8))
    with pytest.raises(DataError, match="no image file|cannot read"):
        read_images([tmp_path / "missing.png"], (1, 8, 8))
    monkeypatch.setattr("ganforge.project.MAX_PIXELS", 100)
    with pytest.raises(DataError, match="over the limit"):
        read_images([colour], (1, 8, 8))


def test_cli_writes_latents_images_grid_and_report(conditional, tmp_path):
    G = load_generator(conditional)
    inputs = _write_pngs(G, tmp_path, latents(2, G.cfg.z_dim, seed=7), torch.tensor([1, 2]))
    out = tmp_path / "proj"
    assert run("project", conditional, *inputs, "--out", out, "--steps", "12", "--starts", "1") == 0
    names = {p.name for p in out.iterdir()}
    assert names == {"latents.npy", "classes.npy", "projection.png", "projection.json",
                     "own0_projected.png", "own1_projected.png"}  # fmt: skip
    z = np.load(out / "latents.npy")
    classes = np.load(out / "classes.npy")
    assert z.shape == (2, G.cfg.z_dim) and z.dtype == np.float32
    assert classes.shape == (2,) and classes.dtype == np.int64
    report = json.loads((out / "projection.json").read_text())
    assert [row["output"] for row in report["images"]] == ["own0_projected.png", "own1_projected.png"]
    assert [row["class"] for row in report["images"]] == classes.tolist()
    with Image.open(out / "projection.png") as grid:  # 2 pairs a row: 4 images of 8 px and padding
        assert grid.size == (4 * 10 + 2, 10 + 2)

    # --latents renders the same images again, with the classes from classes.npy.
    again = tmp_path / "again"
    assert run("sample", conditional, "--latents", out / "latents.npy", "--out", f"{again}/") == 0
    for i in range(2):
        with Image.open(again / f"latent_{i:05d}.png") as a, Image.open(out / f"own{i}_projected.png") as b:
            assert np.abs(np.asarray(a, dtype=int) - np.asarray(b, dtype=int)).max() <= 1
    # Interpolating needs one class along the path.
    assert run("sample", conditional, "--latents", out / "latents.npy", "--interpolate", "5", "--out",
               tmp_path / "path.png") == (0 if classes[0] == classes[1] else 2)  # fmt: skip
    assert run("sample", conditional, "--latents", out / "latents.npy", "--interpolate", "5", "--class", "0",
               "--out", tmp_path / "path.png") == 0  # fmt: skip
    with Image.open(tmp_path / "path.png") as path:
        assert path.size == (5 * 10 + 2, 10 + 2)


def test_cli_bad_inputs_exit_2_and_write_nothing(plain, tmp_path, capsys):
    good = tmp_path / "good.png"
    Image.new("L", (8, 8), 30).save(good)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    out = tmp_path / "out"
    assert run("project", plain, good, bad, "--out", out) == 2
    assert "bad.png" in capsys.readouterr().err
    assert not out.exists()
    other = tmp_path / "sub"
    other.mkdir()
    Image.new("L", (8, 8), 30).save(other / "good.png")
    assert run("project", plain, good, other / "good.png", "--out", out) == 2  # both write good_projected.png
    assert run("project", plain, good, "--out", out, "--class", "1") == 2  # unconditional
    assert run("project", plain, good, "--out", out, "--steps", "2") == 2
    assert not out.exists()
    wrong = tmp_path / "wrong.npy"
    np.save(wrong, np.zeros((2, 5), dtype=np.float32))  # z_dim is 6
    assert run("sample", plain, "--latents", wrong, "--out", tmp_path / "x.png") == 2
    assert "(N, 6)" in capsys.readouterr().err
    assert run("sample", plain, "--interpolate", "4", "--out", tmp_path / "x.png") == 2


def test_a_2d_model_is_refused(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=1, channels=2, z_dim=4, width=8, out_activation="none")
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "toy-ring", "step": 1, "data": "toy:ring8", "seed": 0})
    with pytest.raises(ConfigError, match="2-D points"):
        project(load_generator(path), torch.zeros(1, 2, 1, 1))
