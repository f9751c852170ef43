"""C2PA content credentials: `ganforge sample --c2pa-cert --c2pa-key`, read back by c2pa's own Reader."""

from __future__ import annotations

import builtins
import shutil
import subprocess

import pytest
import torch

from ganforge.checkpoint import load_generator, save_generator
from ganforge.cli import main
from ganforge.config import ModelConfig
from ganforge.images import DIGITAL_SOURCE_TYPE, png_text
from ganforge.models import build_generator

OPENSSL = shutil.which("openssl")


@pytest.fixture
def generator(tmp_path):
    torch.manual_seed(0)
    cfg = ModelConfig(arch="mlp", image_size=28, channels=1, z_dim=6, width=16)
    path = tmp_path / "generator.safetensors"
    save_generator(path, build_generator(cfg), cfg, {"preset": "test", "step": 3, "data": "mnist", "seed": 0})
    return path


@pytest.fixture
def chain(tmp_path):
    """A test CA and an ES256 signing certificate it issued, made with openssl: (chain.pem, key.pem)."""
    if OPENSSL is None:
        pytest.skip("needs the openssl command")
    d = tmp_path / "pki"
    d.mkdir()

    def openssl(*args):
        subprocess.run([OPENSSL, *args], cwd=d, check=True, capture_output=True)

    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "ca.key")
    openssl("req", "-x509", "-new", "-key", "ca.key", "-sha256", "-days", "2", "-subj", "/CN=ganforge test CA/O=test",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
            "-out", "ca.pem")  # fmt: skip
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "leaf.ec")
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "leaf.ec", "-out", "key.pem")
    openssl("req", "-new", "-key", "leaf.ec", "-subj", "/CN=ganforge test signer/O=test", "-out", "leaf.csr")
    (d / "leaf.ext").write_text(
        "basicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=emailProtection\n"
        "subjectKeyIdentifier=hash\nauthorityKeyIdentifier=keyid\n"
    )
    openssl("x509", "-req", "-in", "leaf.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2",
            "-sha256", "-extfile", "leaf.ext", "-out", "leaf.pem")  # fmt: skip
    (d / "chain.pem").write_bytes((d / "leaf.pem").read_bytes() + (d / "ca.pem").read_bytes())
    return d / "chain.pem", d / "key.pem"


@pytest.mark.parametrize("name", ["grid.png", "grid.jpg"])
def test_signed_manifest_reads_back_with_c2pa(generator, chain, tmp_path, name):
    pytest.importorskip("c2pa", reason="needs the c2pa extra: pip install 'ganforge[c2pa]'")
    from ganforge.credentials import GENERATOR_ASSERTION, read_manifest

    out = tmp_path / name
    cert, key = chain
    assert main(["sample", str(generator), "--n", "4", "--out", str(out), "--c2pa-cert", str(cert),
                 "--c2pa-key", str(key)]) == 0  # fmt: skip
    manifest = read_manifest(out)  # c2pa's own Reader
    assertions = {a["label"]: a["data"] for a in manifest["assertions"]}
    actions = next(v["actions"] for k, v in assertions.items() if k.startswith("c2pa.actions"))
    created = [a for a in actions if a["action"] == "c2pa.created"]
    assert created and created[0]["digitalSourceType"] == DIGITAL_SOURCE_TYPE
    assert assertions[GENERATOR_ASSERTION]["generator_sha256"] == load_generator(generator).sha256
    assert manifest["validation_state"] in ("Valid", "Trusted")  # a test CA: valid, not trusted
    assert png_text(out)["ganforge:watermark"] == "on"  # the ganforge chunks and the mark stay


def test_bad_signing_material_fails_before_anything_is_written(generator, chain, tmp_path, capsys):
    pytest.importorskip("c2pa", reason="needs the c2pa extra: pip install 'ganforge[c2pa]'")
    cert, key = chain
    out = tmp_path / "g.png"
    assert main(["sample", str(generator), "--out", str(out), "--c2pa-cert", str(cert)]) == 2
    assert "--c2pa-key" in capsys.readouterr().err
    assert main(["sample", str(generator), "--out", str(out), "--c2pa-cert", str(cert), "--c2pa-key", str(cert)]) == 2
    assert "C2PA signing failed" in capsys.readouterr().err and not out.exists()


def test_without_the_extra_the_flags_say_what_to_install(generator, chain, tmp_path, monkeypatch, capsys):
    real_import = builtins.__import__

    def no_c2pa(name, *args, **kwargs):
        if name == "c2pa" or name.startswith("c2pa."):
            raise ImportError("No module named 'c2pa'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_c2pa)
    cert, key = chain
    out = tmp_path / "g.png"
    assert main(["sample", str(generator), "--out", str(out), "--c2pa-cert", str(cert), "--c2pa-key", str(key)]) == 2
    err = capsys.readouterr().err
    assert "pip install 'ganforge[c2pa]'" in err and err.count("\n") == 1 and not out.exists()
