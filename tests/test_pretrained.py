"""pretrained:NAME: the listing, the spec resolving wherever a generator is taken, sha checks, float16 storage."""

import hashlib
import json

import pytest
import torch
from safetensors import safe_open

from ganforge import pretrained
from ganforge.checkpoint import load_generator, resolve_generator_path, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.errors import CheckpointError
from ganforge.models import build_generator
from ganforge.sample import sample

SHIPPED = pretrained.names()  # what this checkout ships (may be none before scripts/build_pretrained has run)


def run(*args):
    try:
        return main([*map(str, args)])
    except SystemExit as e:
        return e.code


def _ship(folder, name="tiny", num_classes=0):
    """A package folder with one float16 generator, its card and SHA256SUMS, as scripts/build_pretrained writes."""
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=8, channels=1, z_dim=6, width=16, num_classes=num_classes)
    G = build_generator(cfg).eval()
    path = folder / f"{name}.safetensors"
    save_generator(path, G, cfg, {"preset": "test", "step": 1, "data": "mnist", "seed": 0}, half=True)
    card = {"description": "a tiny test model", "headline": "FID 1.23 (mnist features, 10 samples)"}
    (folder / f"{name}.json").write_text(json.dumps(card))
    sums = "".join(f"{hashlib.sha256(p.read_bytes()).hexdigest()}  {p.name}\n" for p in sorted(folder.iterdir()))
    (folder / pretrained.SHA256SUMS).write_text(sums)
    return G, path


@pytest.fixture
def shipped(tmp_path, monkeypatch):
    folder = tmp_path / "pretrained"
    folder.mkdir()
    G, path = _ship(folder, num_classes=3)
    monkeypatch.setattr(pretrained, "FOLDER", folder)
    return G, path


def test_listing_shows_name_description_size_and_headline(shipped, capsys):
    _, path = shipped
    (row,) = pretrained.listing()
    assert row == {"name": "tiny", "spec": "pretrained:tiny", "description": "a tiny test model",
                   "bytes": path.stat().st_size, "headline": "FID 1.23 (mnist features, 10 samples)"}  # fmt: skip
    assert run("pretrained", "list") == 0
    out = capsys.readouterr().out
    assert "pretrained:tiny" in out and "a tiny test model" in out and "FID 1.23" in out
    assert run("pretrained") == 0  # plain `ganforge pretrained` lists too
    assert "pretrained:tiny" in capsys.readouterr().out
    assert run("pretrained", "show", "tiny") == 0
    assert json.loads(capsys.readouterr().out)["description"] == "a tiny test model"


def test_the_spec_resolves_wherever_a_generator_is_taken(shipped, tmp_path):
    _, path = shipped
    assert resolve_generator_path("pretrained:tiny") == path
    G = load_generator("pretrained:tiny")
    assert all(p.dtype == torch.float32 for p in G.parameters())
    assert run("sample", "pretrained:tiny", "--class", "2", "--n", "4", "--out", tmp_path / "s.png") == 0
    assert (tmp_path / "s.png").is_file()


def test_an_unknown_name_says_which_exist(shipped, capsys):
    with pytest.raises(CheckpointError, match="pretrained:tiny"):
        resolve_generator_path("pretrained:nope")
    assert run("sample", "pretrained:nope", "--out", "x.png") == 2
    err = capsys.readouterr().err
    assert "'nope'" in err and "pretrained:tiny" in err
    assert run("pretrained", "show", "../tiny") == 2


def test_a_damaged_file_is_refused(shipped):
    _, path = shipped
    data = bytearray(path.read_bytes())
    data[-1] ^= 1
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="damaged or was replaced"):
        load_generator("pretrained:tiny")


def test_float16_storage_round_trip(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="dcgan", image_size=28, channels=1, z_dim=16, width=16, num_classes=10)
    G = build_generator(cfg).eval()
    save_generator(tmp_path / "fp32.safetensors", G, cfg, {"seed": 0})
    save_generator(tmp_path / "fp16.safetensors", G, cfg, {"seed": 0}, half=True)
    with safe_open(str(tmp_path / "fp16.safetensors"), framework="pt") as f:
        assert f.metadata()["storage_dtype"] == "float16"
        dtypes = {f.get_tensor(k).dtype for k in f.keys()}
    assert torch.float16 in dtypes and torch.float32 not in dtypes  # integer BN counters stay integers
    size32, size16 = ((tmp_path / f"fp{b}.safetensors").stat().st_size for b in (32, 16))
    assert size16 < 0.6 * size32
    G32, G16 = load_generator(tmp_path / "fp32.safetensors"), load_generator(tmp_path / "fp16.safetensors")
    assert all(p.dtype == torch.float32 for p in G16.parameters())
    a, b = sample(G32, 64, seed=1), sample(G16, 64, seed=1)
    # float16 keeps ~3 decimal digits of each weight: the images move by far less than one uint8 step (2/255).
    assert (a - b).abs().max() < 2 / 255
    save_generator(tmp_path / "again.safetensors", G, cfg, {"seed": 0}, half=True)
    assert (tmp_path / "again.safetensors").read_bytes() == (tmp_path / "fp16.safetensors").read_bytes()


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_generators_load_and_carry_their_card(name, tmp_path):
    G = load_generator(f"pretrained:{name}")
    info = pretrained.card(name)
    assert info["sha256"] == G.sha256
    assert info["eval"]["generator"]["sha256"] == G.sha256
    assert info["headline"] and info["description"] and info["command"].startswith("OMP_NUM_THREADS=")
    out = tmp_path / "s.png"
    assert run("sample", f"pretrained:{name}", "--n", "4", "--out", out) == 0 and out.is_file()
