"""C2PA content credentials: a signed manifest (created by ganforge, trained algorithmic media, which generator).

Optional: needs the `c2pa` extra (the c2pa-python package, the C2PA project's own SDK). The manifest
holds a c2pa.actions assertion (c2pa.created, digital source type trainedAlgorithmicMedia, software
agent ganforge) and org.ganforge.generator (the generator's sha256). The signature needs a
certificate chain (leaf first) and its private key, in PEM.
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import numpy as np

from ganforge.errors import ConfigError
from ganforge.images import DIGITAL_SOURCE_TYPE, JPEG_SUFFIXES
from ganforge.io import atomic_path
from ganforge.version import __version__

ALGORITHMS = ("es256", "es384", "es512", "ps256", "ps384", "ps512", "ed25519")
GENERATOR_ASSERTION = "org.ganforge.generator"
INSTALL = "pip install 'ganforge[c2pa]' (the c2pa-python package)"


def require_c2pa() -> Any:
    """The c2pa module, or a ConfigError that says what to install."""
    try:
        import c2pa
    except ImportError as e:
        raise ConfigError(f"--c2pa-cert and --c2pa-key need the C2PA SDK, which is not installed: {INSTALL}") from e
    return c2pa


def manifest(generator_sha256: str, title: str) -> dict[str, Any]:
    """The manifest definition that `sign_file` signs."""
    return {
        "claim_generator_info": [{"name": "ganforge", "version": __version__}],
        "title": title,
        "assertions": [
            {
                "label": "c2pa.actions",
                "data": {
                    "actions": [
                        {
                            "action": "c2pa.created",
                            "digitalSourceType": DIGITAL_SOURCE_TYPE,
                            "softwareAgent": {"name": "ganforge", "version": __version__},
                        }
                    ]
                },
            },
            {"label": GENERATOR_ASSERTION, "data": {"generator_sha256": generator_sha256}},
        ],
    }


def read_pem(path: str | Path, what: str) -> bytes:
    """A PEM file's bytes; a ConfigError naming the flag when it is missing or not PEM."""
    try:
        data = Path(path).read_bytes()
    except OSError as e:
        raise ConfigError(f"cannot read the {what} {path}: {e.strerror}; pass a PEM file") from None
    if b"-----BEGIN " not in data:
        raise ConfigError(f"the {what} {path} is not PEM (no '-----BEGIN' line); pass a PEM file")
    return data


def signed_bytes(
    data: bytes, mime: str, *, cert_chain: str | Path, private_key: str | Path, generator_sha256: str, title: str,
    alg: str = "es256",
) -> bytes:  # fmt: skip
    """PNG or JPEG bytes (mime image/png or image/jpeg) with a signed C2PA manifest embedded."""
    c2pa = require_c2pa()
    if alg not in ALGORITHMS:
        raise ConfigError(f"--c2pa-alg must be one of {', '.join(ALGORITHMS)}; got {alg}")
    info = c2pa.C2paSignerInfo(
        alg.encode(), read_pem(cert_chain, "certificate chain"), read_pem(private_key, "private key"), None
    )
    out = io.BytesIO()
    try:
        signer = c2pa.Signer.from_info(info)
        builder = c2pa.Builder(json.dumps(manifest(generator_sha256, title)))
        builder.sign(signer, mime, io.BytesIO(data), out)
    except c2pa.C2paError as e:
        raise ConfigError(
            f"C2PA signing failed ({e}); check that --c2pa-cert {cert_chain} holds the chain (leaf first) for "
            f"--c2pa-key {private_key}, and that --c2pa-alg {alg} fits the key"
        ) from None
    return out.getvalue()


def check_signer(*, cert_chain: str | Path, private_key: str | Path, alg: str = "es256") -> None:
    """Sign a 1x1 PNG in memory: a bad chain, key or algorithm fails here, before any image is written."""
    from ganforge.images import png_bytes

    tiny = png_bytes(np.zeros((1, 1, 1), dtype=np.uint8))
    signed_bytes(tiny, "image/png", cert_chain=cert_chain, private_key=private_key, generator_sha256="", title="check",
                 alg=alg)  # fmt: skip


def sign_file(
    path: str | Path, *, cert_chain: str | Path, private_key: str | Path, generator_sha256: str, alg: str = "es256"
) -> None:
    """Sign the PNG or JPEG at `path` with a C2PA manifest, in place (atomically)."""
    path = Path(path)
    mime = "image/jpeg" if path.suffix.lower() in JPEG_SUFFIXES else "image/png"
    data = signed_bytes(
        path.read_bytes(), mime, cert_chain=cert_chain, private_key=private_key, generator_sha256=generator_sha256,
        title=path.name, alg=alg,
    )  # fmt: skip
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def read_manifest(path: str | Path) -> dict[str, Any]:
    """The active manifest of a signed file, as c2pa's Reader gives it (with its validation state)."""
    c2pa = require_c2pa()
    path = Path(path)
    mime = "image/jpeg" if path.suffix.lower() in JPEG_SUFFIXES else "image/png"
    reader = c2pa.Reader(mime, io.BytesIO(path.read_bytes()))
    store = json.loads(reader.json())
    return {**store["manifests"][store["active_manifest"]], "validation_state": store.get("validation_state")}
