"""The IPTC digital source type in XMP, read back by exiftool (a reader no one here wrote), and our own check."""

from __future__ import annotations

import shutil
import subprocess

import pytest
import torch
from PIL import Image

from ganforge.checkpoint import save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.images import DIGITAL_SOURCE_TYPE, png_text
from ganforge.models import build_generator

EXIFTOOL = shutil.which("exiftool")
EXIFTOOL_MISSING = "needs exiftool (Debian libimage-exiftool-perl; .ci/run installs it)"


@pytest.fixture
def generator(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=6, width=16)
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test", "step": 3, "data": "mnist", "seed": 0})
    return path


def _sample(generator, out, *flags):
    assert main(["sample", str(generator), "--n", "4", "--out", str(out), *flags]) == 0


@pytest.mark.parametrize("name", ["grid.png", "grid.jpg", "singles/"])
def test_exiftool_reads_the_digital_source_type(generator, tmp_path, name):
    if EXIFTOOL is None:
        pytest.skip(EXIFTOOL_MISSING)
    out = tmp_path / name
    _sample(generator, f"{out}/" if name.endswith("/") else out)  # a trailing '/' asks for single images
    files = sorted(out.iterdir()) if name.endswith("/") else [out]
    for path in files:
        result = subprocess.run(
            [EXIFTOOL, "-s3", "-XMP-iptcExt:DigitalSourceType", str(path)], capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == DIGITAL_SOURCE_TYPE, (path, result.stdout, result.stderr)
        listing = subprocess.run([EXIFTOOL, "-a", "-G1", str(path)], capture_output=True, text=True, check=True)
        assert "Warning" not in listing.stdout and "Creator Tool" in listing.stdout  # a well-formed file


def test_xmp_sits_beside_the_ganforge_chunks(generator, tmp_path):
    _sample(generator, tmp_path / "g.png")
    _sample(generator, tmp_path / "g.jpg")
    for path in (tmp_path / "g.png", tmp_path / "g.jpg"):
        with Image.open(path) as im:
            xmp = im.info.get("xmp") or im.info.get("XML:com.adobe.xmp")
        xmp_text = xmp.decode("utf-8") if isinstance(xmp, bytes) else str(xmp)
        assert DIGITAL_SOURCE_TYPE in xmp_text and "Iptc4xmpExt:DigitalSourceType" in xmp_text
        text = png_text(path)
        assert text["ganforge:synthetic"] == "true" and "XML:com.adobe.xmp" not in text  # provenance unchanged
    raw = (tmp_path / "g.jpg").read_bytes()
    at = raw.index(b"\xff\xe1")
    assert raw[at + 4 : at + 4 + 29] == b"http://ns.adobe.com/xap/1.0/\0"  # the APP1 XMP segment's header
    assert b"iTXtXML:com.adobe.xmp\0" in (tmp_path / "g.png").read_bytes()
